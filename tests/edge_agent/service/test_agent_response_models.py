"""Every route answers a declared response model: validated, in the OpenAPI document, losing nothing."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder

SETTINGS = {
    "runtime": {"provider": "cpu", "intra_op_threads": 1},
    "gates": {
        "auto_advance": False,
        "evaluate_every_s": 3600,
        "min_items": 12,
        "min_labels": 6,
        "evidence": "all",
    },
    "groups": {"min_labels": 5},
}
#: The routes that answered a bare dict before they had a model, and the arguments they are read with.
READS: dict[str, dict[str, Any]] = {
    "/v1/status": {},
    "/v1/models": {},
    "/v1/gates": {},
    "/v1/kpis": {"days": 30},
    "/v1/report": {"days": 30},
    "/v1/federation": {},
    "/v1/groups": {"key": None},
}


@pytest.fixture
def site_with_candidate(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path], waiter: Callable[..., Any]
) -> Iterator[tuple[Agent, Any]]:
    """v1 in production, v2 in shadow, labelled answers on two lines (one too small to judge)."""
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    with Agent.open(make_site(settings=SETTINGS)) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        agent.install(bundle_versions[2], actor="supervisor")
        candidate = agent.active.candidate
        assert candidate is not None
        for line, count in (("L1", 12), ("L2", 2)):
            texts = [f"scratch {n} on the {line} housing" for n in range(count)]
            answers = agent.predict([Item("text", t, t.encode(), {"line": line}, "operator") for t in texts])
            for answer in answers:
                agent.store.add_label(answer.input_id, "scratch", actor="operator", split="holdout")
        waiter(lambda: agent.store.stage_count(candidate.model_id, "shadow", 0.0) >= 14, what="shadow")
        agent.store.refresh_kpi_daily()
        with TestClient(create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)) as client:
            yield agent, client


#: Routes that answer bytes, not JSON, and the media types their OpenAPI entry must declare.
BINARY = {"/v1/inputs/{input_id}/image": {"image/png", "image/jpeg"}}


def _routes(app: Any) -> list[APIRoute]:
    return [route for route in app.routes if isinstance(route, APIRoute) and route.path not in BINARY]


def test_every_route_declares_a_response_model(site_with_candidate: tuple[Agent, Any]) -> None:
    _, client = site_with_candidate
    routes = _routes(client.app)
    assert len(routes) >= 23
    # A bare ``-> dict[str, Any]`` would count as a response model to FastAPI: a pydantic model is asked for.
    untyped = [
        f"{sorted(route.methods)} {route.path}"
        for route in routes
        if not (isinstance(route.response_model, type) and issubclass(route.response_model, BaseModel))
    ]
    assert untyped == []


def test_the_openapi_document_names_a_schema_for_every_answer(site_with_candidate: tuple[Agent, Any]) -> None:
    _, client = site_with_candidate
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for route in _routes(client.app):
        for method in route.methods:
            answer = document["paths"][route.path][method.lower()]["responses"]["200"]
            reference = answer["content"]["application/json"]["schema"]["$ref"]
            name = reference.removeprefix("#/components/schemas/")
            assert name == route.response_model.__name__ and schemas[name]["properties"], route.path
    for path, media_types in BINARY.items():
        assert set(document["paths"][path]["get"]["responses"]["200"]["content"]) == media_types


def test_the_models_lose_nothing_the_agent_answers(site_with_candidate: tuple[Agent, Any]) -> None:
    """Each route's own answer, validated by its model and written back, is the answer it gave before."""
    agent, client = site_with_candidate
    routes = {route.path: route for route in _routes(client.app) if "GET" in route.methods}
    assert agent.gate_report() is not None
    for path, arguments in READS.items():
        route = routes[path]
        answer = route.endpoint(role="supervisor", **arguments)
        if inspect.iscoroutine(answer):  # a view computed on the reader threads
            answer = asyncio.run(answer)
        raw = json.loads(json.dumps(answer))
        typed = route.response_model.model_validate(raw)
        assert typed.model_dump(mode="json", exclude_unset=True) == raw, path
    breakdown = agent.gate_report().to_json()["gates"][3]["breakdown"]  # type: ignore[union-attr]
    assert {row["group"]: "harmed" in row for row in breakdown} == {"line=L1": True, "line=L2": False}


def test_the_answers_leave_out_what_the_agent_leaves_out(site_with_candidate: tuple[Agent, Any]) -> None:
    agent, client = site_with_candidate
    headers = {"Authorization": f"Bearer {agent.site.read_token('supervisor')}"}
    for path in ("/v1/gates", "/v1/status"):
        answer = client.get(path, headers=headers).json()
        rows = {row["group"]: row for gate in answer["gates"]["gates"] for row in gate["breakdown"]}
        assert "harmed" in rows["line=L1"] and "harmed" not in rows["line=L2"], path
    report = client.get("/v1/report", params={"days": 3}, headers=headers).json()
    assert len(report["accuracy"]["daily"]) == 3 and "day" not in report["accuracy"]["overall"]
