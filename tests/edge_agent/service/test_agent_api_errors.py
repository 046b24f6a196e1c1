"""Roles and bad input against a real agent process: clear errors, right status codes, nothing lost."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.site import SiteFolder
from genba.errors import AgentError, AgentUnavailableError, AuthenticationError, InstallRefusedError

ROLES = ("operator", "supervisor", "integration")


@pytest.fixture
def served(
    make_site: Callable[..., SiteFolder], agent_process: Callable[..., Any], bundle_versions: dict[int, Path]
) -> Iterator[tuple[Any, dict[str, httpx.Client]]]:
    site = make_site(
        settings={
            "runtime": {"provider": "cpu"},
            "gates": {"auto_advance": False},
            "api": {"max_request_bytes": 4096},
        }
    )
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[2])
    clients = {
        role: httpx.Client(base_url=agent.url, headers={"Authorization": f"Bearer {site.read_token(role)}"})
        for role in ROLES
    }
    clients["nobody"] = httpx.Client(base_url=agent.url)
    yield agent, clients
    for client in clients.values():
        client.close()


def test_a_site_that_never_joined_reports_so(served: tuple[Any, dict[str, httpx.Client]]) -> None:
    agent, _ = served
    with agent.client("operator") as client:
        state = client.federation()
    assert state.joined is False and state.updates_sent == 0 and state.last_update is None
    assert state.bytes_sent_by_kind == {} and state.differential_privacy is None


def test_the_client_returns_each_routes_response_model(served: tuple[Any, dict[str, httpx.Client]]) -> None:
    """Every read of a real agent comes back as the route's own pydantic model, validated."""
    from edge_agent.service import schemas

    agent, _ = served
    with agent.client("supervisor") as client:
        answer = client.predict("dent near the flange", groups={"line": "L1"})
        label = client.label(answer.input_id, "dent", operator_seconds=1.5)
        reads = {
            schemas.PredictResponse: answer,
            schemas.LabelResponse: label,
            schemas.QueueResponse: schemas.QueueResponse(items=client.queue(5)),
            schemas.ExplanationResponse: client.explain(answer.input_id),
            schemas.StatusResponse: client.status(),
            schemas.ModelsResponse: client.models(),
            schemas.GatesResponse: client.gates(),
            schemas.KpisResponse: client.kpis(7),
            schemas.ReportResponse: client.report(7),
            schemas.FederationResponse: client.federation(),
            schemas.GroupsResponse: client.groups(),
            schemas.DriftResponse: client.drift(),
            schemas.ChainResponse: client.egress(),
        }
        for model, read in reads.items():
            assert type(read) is model
        status, report = client.status(), client.report(7)
        assert status.role == "supervisor" and status.production is not None
        assert status.production.version == 2 and status.candidate is None
        assert len(report.accuracy.daily) == 7 and report.window.days == 7
        assert client.models().models[0].stage == "production" and client.training() is None
        assert isinstance(client.audit().entries[0], schemas.ChainEntryOut) and client.health()


def _input_id(clients: dict[str, httpx.Client]) -> int:
    return int(clients["operator"].post("/v1/predict", json={"text": "scratch on rim"}).json()["input_id"])


#: (method, path, body, roles allowed). Allowed calls may fail otherwise (409, 404), never with 401/403.
CALLS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/v1/predict", {"text": "dent on the housing"}, {"integration", "operator", "supervisor"}),
    (
        "POST",
        "/v1/predict/batch",
        {"items": [{"text": "ok part"}]},
        {"integration", "operator", "supervisor"},
    ),
    ("POST", "/v1/labels", {"input_id": 1, "label": "ok"}, {"operator", "supervisor"}),
    ("GET", "/v1/queue", None, {"operator", "supervisor"}),
    ("GET", "/v1/status", None, {"operator", "supervisor"}),
    ("GET", "/v1/models", None, {"operator", "supervisor"}),
    ("GET", "/v1/gates", None, {"operator", "supervisor"}),
    ("GET", "/v1/kpis", None, {"operator", "supervisor"}),
    ("GET", "/v1/egress", None, {"operator", "supervisor"}),
    ("GET", "/v1/federation", None, {"operator", "supervisor"}),
    ("GET", "/v1/audit", None, {"operator", "supervisor"}),
    ("POST", "/v1/models/install", {"path": "/nonexistent/bundle"}, {"supervisor"}),
    ("POST", "/v1/models/promote", {}, {"supervisor"}),
    ("POST", "/v1/models/rollback", {}, {"supervisor"}),
]


def test_each_role_is_allowed_exactly_its_operations(served: tuple[Any, dict[str, httpx.Client]]) -> None:
    _, clients = served
    _input_id(clients)
    for method, path, body, allowed in CALLS:
        for role in ROLES:
            response = clients[role].request(method, path, json=body)
            if role in allowed:
                assert response.status_code not in (401, 403), (role, path, response.text)
                assert response.status_code < 500, (role, path, response.text)
            else:
                assert response.status_code == 403, (role, path, response.status_code)
                assert role in response.json()["error"]["message"]
        anonymous = clients["nobody"].request(method, path, json=body)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"


def test_bad_requests_get_one_clear_line_and_the_right_status(
    served: tuple[Any, dict[str, httpx.Client]],
) -> None:
    _, clients = served
    operator = clients["operator"]
    cases = [
        (
            operator.post("/v1/predict", content=b'{"text": ', headers={"content-type": "application/json"}),
            400,
            "not valid JSON",
        ),
        (operator.post("/v1/predict", json={"text": 42}), 422, "text"),
        (operator.post("/v1/predict", json={"text": ""}), 422, "text"),
        (operator.post("/v1/predict", json={"text": "   "}), 422, "empty"),
        (operator.post("/v1/predict", json={"image": "aGVsbG8="}), 400, "takes text"),
        (operator.post("/v1/predict", json={"text": "x", "colour": "red"}), 422, "colour"),
        (operator.post("/v1/predict", json={"text": "x" * 5000}), 413, "over 4096 bytes"),
        (operator.post("/v1/labels", json={"input_id": 999_999, "label": "ok"}), 404, "999999"),
        (
            operator.post("/v1/labels", json={"input_id": _input_id(clients), "label": "banana"}),
            400,
            "unknown label",
        ),
        (operator.get("/v1/queue", params={"limit": "many"}), 422, "limit"),
        (clients["supervisor"].post("/v1/models/rollback", json={"version": 77}), 404, "version 77"),
        (clients["supervisor"].post("/v1/models/rollback", json={"version": "7.2"}), 404, "version 7.2"),
        (clients["supervisor"].post("/v1/models/rollback", json={"version": "7.x"}), 422, "version"),
        (clients["supervisor"].post("/v1/models/promote", json={}), 409, "no candidate"),
        (clients["supervisor"].post("/v1/models/discard", json={}), 409, "no candidate to discard"),
        (operator.post("/v1/models/discard", json={}), 403, "operator role may not manage"),
        (
            clients["nobody"].get("/v1/status", headers={"Authorization": "Bearer wrong"}),
            401,
            "invalid token",
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (status, response.text)
        message = response.json()["error"]["message"]
        assert words in message and "\n" not in message


def test_a_chunked_body_over_the_limit_is_refused_before_parsing(
    served: tuple[Any, dict[str, httpx.Client]],
) -> None:
    agent, clients = served
    host, port = agent.url.removeprefix("http://").split(":")
    token = clients["operator"].headers["Authorization"]
    chunk = json.dumps({"text": "y" * 6000}).encode()
    request = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    request += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")


def test_tampered_older_and_duplicate_bundles_are_refused_while_production_keeps_serving(
    served: tuple[Any, dict[str, httpx.Client]],
    bundle_versions: dict[int, Path],
    make_version: Callable[..., Path],
    other_keypair: tuple[Path, Path],
) -> None:
    agent, clients = served
    tampered = make_version(bundle_versions[3], 3)
    (tampered / "head.onnx").write_bytes((tampered / "head.onnx").read_bytes()[:-8] + b"\0" * 8)
    foreign = make_version(bundle_versions[3], 3, key=other_keypair[0])
    with agent.client() as client:
        for bundle, words in ((tampered, "does not match"), (foreign, "invalid")):
            with pytest.raises(AgentError) as caught:
                client.install(bundle)
            assert caught.value.status == 422 and words in str(caught.value)
        with pytest.raises(InstallRefusedError, match="older than production v2"):
            client.install(bundle_versions[1])
        with pytest.raises(InstallRefusedError, match="already production"):
            client.install(bundle_versions[2])
        assert client.status().production.version == 2 and client.status().candidate is None
        assert client.predict("dent near the flange").model.version == 2
        rolled = client.install(bundle_versions[1], rollback=True)  # an explicit rollback may go back
        assert rolled.slot == "candidate"


def test_the_client_says_clearly_when_the_agent_is_down_or_the_token_is_wrong(
    served: tuple[Any, dict[str, httpx.Client]],
) -> None:
    from edge_agent.service.client import AgentClient

    agent, _ = served
    with (
        AgentClient(agent.url, "not-a-token") as client,
        pytest.raises(AuthenticationError, match="invalid token"),
    ):
        client.status()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with (
        AgentClient(f"http://127.0.0.1:{free_port}", "x") as client,
        pytest.raises(AgentUnavailableError, match="cannot reach the agent"),
    ):
        client.status()


def test_the_openapi_document_is_served(served: tuple[Any, dict[str, httpx.Client]]) -> None:
    _, clients = served
    document = clients["nobody"].get("/openapi.json").json()
    assert {"/v1/predict", "/v1/labels", "/v1/models/promote", "/v1/egress"} <= set(document["paths"])
