"""`GET /v1/inputs/{id}/image`: the operator sees the image they are asked to label, and no one else."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder


@pytest.fixture
def image_api(make_site: Callable[..., SiteFolder], vit_bundle: Path) -> Iterator[tuple[Agent, Any]]:
    from fastapi.testclient import TestClient

    from edge_agent.service.app import create_app
    from edge_agent.service.auth import TokenRegistry

    settings = {"runtime": {"provider": "cpu", "intra_op_threads": 1}, "gates": {"auto_advance": False}}
    with Agent.open(make_site(settings=settings)) as agent:
        agent.install(vit_bundle, actor="supervisor")
        with TestClient(create_app(agent, TokenRegistry.from_site(agent.site), agent.config.api)) as client:
            yield agent, client


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, format="PNG")
    return out.getvalue()


def _headers(agent: Agent, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.site.read_token(role)}"}


def _serve(agent: Agent, client: Any, image: bytes) -> int:
    body = {"image": base64.b64encode(image).decode("ascii")}
    answer = client.post("/v1/predict", json=body, headers=_headers(agent, "operator"))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["input_id"])


def test_an_operator_gets_the_queued_image_byte_for_byte_and_it_is_never_cached(
    image_api: tuple[Agent, Any],
) -> None:
    agent, client = image_api
    image = _png((200, 30, 30))
    input_id = _serve(agent, client, image)
    queued = client.get("/v1/queue", headers=_headers(agent, "operator")).json()["items"]
    assert [(q["input_id"], q["kind"], q["text"]) for q in queued] == [(input_id, "image", None)]
    for role in ("operator", "supervisor"):
        shown = client.get(f"/v1/inputs/{input_id}/image", headers=_headers(agent, role))
        assert shown.status_code == 200 and shown.content == image
        assert shown.headers["content-type"] == "image/png"
        assert (
            shown.headers["cache-control"] == "no-store"
            and shown.headers["x-content-type-options"] == "nosniff"
        )


def test_the_image_is_refused_to_the_integration_role_and_without_a_token(
    image_api: tuple[Agent, Any],
) -> None:
    agent, client = image_api
    input_id = _serve(agent, client, _png((10, 200, 10)))
    refused = client.get(f"/v1/inputs/{input_id}/image", headers=_headers(agent, "integration"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client.get(f"/v1/inputs/{input_id}/image").status_code == 401


def test_a_missing_text_or_pruned_input_is_answered_in_the_error_shape(image_api: tuple[Agent, Any]) -> None:
    agent, client = image_api
    headers = _headers(agent, "operator")
    missing = client.get("/v1/inputs/999999/image", headers=headers)
    assert missing.status_code == 404 and "input 999999 does not exist" in missing.json()["error"]["message"]
    ((text_id, _),) = agent.store.record_served([_text_record()], [[]])
    text = client.get(f"/v1/inputs/{text_id}/image", headers=headers)
    assert text.status_code == 404 and "is a text, not an image" in text.json()["error"]["message"]
    input_id = _serve(agent, client, _png((0, 0, 250)))
    agent.store.add_label(input_id, "ok", actor="operator", split="holdout")
    agent.store.prune(keep_days=0, keep_labelled=False)
    gone = client.get(f"/v1/inputs/{input_id}/image", headers=headers)
    assert gone.status_code == 410 and "removed by retention" in gone.json()["error"]["message"]


def _text_record() -> Any:
    from edge_agent.store import InputRecord

    return InputRecord("text", b"a typed report on an image site")
