"""`POST /v1/labels` through the real app: no token chooses a split; the agent decides it by content."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder


@pytest.fixture
def api(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> Iterator[tuple[Agent, Any]]:
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    settings = {"runtime": {"provider": "cpu", "intra_op_threads": 1}, "gates": {"auto_advance": False}}
    with Agent.open(make_site(settings=settings)) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        with TestClient(create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)) as client:
            yield agent, client


def _headers(agent: Agent, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.site.read_token(role)}"}


def _labels(agent: Agent) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(agent.site.store_file)) as conn:
        return conn.execute("SELECT input_id, split FROM labels ORDER BY id").fetchall()


@pytest.mark.parametrize("role", ["operator", "supervisor"])
@pytest.mark.parametrize("split", ["train", "holdout", None])
def test_no_token_can_set_a_split(api: tuple[Agent, Any], role: str, split: str | None) -> None:
    agent, client = api
    headers = _headers(agent, role)
    input_id = client.post("/v1/predict", json={"text": "dent near the flange"}, headers=headers).json()[
        "input_id"
    ]
    body = {"input_id": input_id, "label": "dent", "split": split}
    refused = client.post("/v1/labels", json=body, headers=headers)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("split: no caller chooses the split; the agent decides it")
    assert "\n" not in error["message"]
    assert _labels(agent) == []  # nothing was recorded, under either split
    other = client.post(
        "/v1/labels", json={"input_id": input_id, "label": "dent", "colour": "red"}, headers=headers
    )
    assert other.status_code == 422 and other.json()["error"]["message"].startswith("colour: unknown field")


def test_the_agent_decides_the_split_by_content_and_the_schema_offers_none(api: tuple[Agent, Any]) -> None:
    agent, client = api
    headers = _headers(agent, "operator")
    texts = [f"scratch {n} on the housing" for n in range(12)]
    variants = [f"  {t.upper()}\t" for t in texts]
    given = {}
    for text in (*texts, *variants):
        input_id = client.post("/v1/predict", json={"text": text}, headers=headers).json()["input_id"]
        answer = client.post("/v1/labels", json={"input_id": input_id, "label": "scratch"}, headers=headers)
        assert answer.status_code == 200
        given[text] = answer.json()["split"]
        assert given[text] == agent.split_rule.split_for("text", text.encode())
    assert [given[t] for t in texts] == [given[v] for v in variants]
    assert {"train", "holdout"} == set(given.values())
    assert [split for _, split in _labels(agent)] == [given[t] for t in (*texts, *variants)]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["LabelRequest"]
    assert "split" not in schema["properties"]
