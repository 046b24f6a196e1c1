"""Typed client of the agent's local API, for the GUI, the CLI and integrations.

It imports httpx and the kernel's errors only: no torch, ONNX Runtime or flwr,
so it is cheap to import from a desktop app. Every failure is a
:class:`genba.errors.AgentError` with the agent's own one-line message.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from edge_agent.service import schemas
from edge_agent.site import ROLES, SiteFolder
from genba.errors import (
    AgentError,
    AgentUnavailableError,
    AuthenticationError,
    DiskFullError,
    InstallRefusedError,
    KeyFileError,
    NoModelError,
    PermissionDeniedError,
    RolloutError,
    error_code,
)

#: The API's own response models: what the agent sends is what the client returns, validated.
ModelAnswer = schemas.ModelAnswerOut
PredictResult = schemas.PredictResponse
LabelResult = schemas.LabelResponse
QueueEntry = schemas.QueueEntry
TrainingJob = schemas.TrainingJobOut

M = TypeVar("M", bound=BaseModel)


#: The agent's own error types, by the code it sends; anything else by its HTTP status.
_BY_CODE: dict[str, type[AgentError]] = {
    error_code(kind): kind
    for kind in (AuthenticationError, PermissionDeniedError, InstallRefusedError, RolloutError,
                 AgentUnavailableError, NoModelError, DiskFullError)
}  # fmt: skip
_BY_STATUS: dict[int, type[AgentError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    409: RolloutError,
    503: AgentUnavailableError,
    507: DiskFullError,  # the install's copy or a store write (store_full) found the disk full
}


class AgentClient:
    """``AgentClient.for_site(data_dir)`` finds the running agent and the best token this user may read."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport, trust_env=False
        )  # never a proxy: the agent is on loopback

    @classmethod
    def for_site(cls, data_dir: Path, role: str | None = None, *, timeout: float = 30.0) -> AgentClient:
        site = SiteFolder(data_dir).require_initialized()
        url = site.read_address()["url"]
        return cls(url, _token(site, role), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def health(self) -> bool:
        return self._get(schemas.HealthResponse, "GET", "/health").status == "ok"

    def predict(
        self, text: str | None = None, *, image: bytes | None = None, groups: dict[str, str] | None = None
    ) -> PredictResult:
        return self._get(PredictResult, "POST", "/v1/predict", json=_item(text, image, groups))

    def predict_batch(self, texts: list[str], groups: dict[str, str] | None = None) -> list[PredictResult]:
        body = {"items": [_item(text, None, groups) for text in texts]}
        return self._get(schemas.PredictBatchResponse, "POST", "/v1/predict/batch", json=body).items

    def label(
        self,
        input_id: int,
        label: str,
        *,
        operator_seconds: float | None = None,
        groups: dict[str, str] | None = None,
    ) -> LabelResult:
        """The agent decides whether the label trains or judges (``LabelResult.split``), by content."""
        body: dict[str, Any] = {"input_id": input_id, "label": label, "groups": groups or {}}
        if operator_seconds is not None:
            body["operator_seconds"] = operator_seconds
        return self._get(LabelResult, "POST", "/v1/labels", json=body)

    def input_image(self, input_id: int) -> bytes:
        """The stored image of an input the operator is asked to label (operators and supervisors)."""
        response = self._response("GET", f"/v1/inputs/{int(input_id)}/image")
        if not response.headers.get("content-type", "").startswith("image/"):
            raise AgentError(f"the agent's answer for input {input_id}'s image is not an image")
        return response.content

    def explain(self, input_id: int) -> schemas.ExplanationResponse:
        """Why the production model answers the stored input as it does: words or patches with weights."""
        path = f"/v1/inputs/{int(input_id)}/explanation"
        return self._get(schemas.ExplanationResponse, "GET", path, timeout=60.0)

    def queue(self, limit: int = 20) -> list[QueueEntry]:
        return self._get(schemas.QueueResponse, "GET", "/v1/queue", params={"limit": limit}).items

    def status(self) -> schemas.StatusResponse:
        return self._get(schemas.StatusResponse, "GET", "/v1/status")

    def models(self) -> schemas.ModelsResponse:
        return self._get(schemas.ModelsResponse, "GET", "/v1/models")

    def install(self, bundle: Path, *, rollback: bool = False) -> schemas.InstallResponse:
        body = {"path": str(Path(bundle).resolve()), "rollback": rollback}
        return self._get(schemas.InstallResponse, "POST", "/v1/models/install", json=body, timeout=300.0)

    def promote(self, to_stage: str | None = None) -> schemas.PromoteResponse:
        body = {"to_stage": to_stage}
        return self._get(schemas.PromoteResponse, "POST", "/v1/models/promote", json=body, timeout=300.0)

    def discard(self, reason: str | None = None) -> schemas.DiscardResponse:
        body = {"reason": reason}
        return self._get(schemas.DiscardResponse, "POST", "/v1/models/discard", json=body, timeout=300.0)

    def rollback(self, version: int | str | None = None) -> schemas.RollbackResponse:
        body = {"version": version}
        return self._get(schemas.RollbackResponse, "POST", "/v1/models/rollback", json=body, timeout=300.0)

    def train(self, mode: str = "head", seed: int = 0, unlabelled: str = "off") -> TrainingJob:
        body = {"mode": mode, "seed": seed, "unlabelled": unlabelled}
        job = self._get(schemas.TrainingResponse, "POST", "/v1/train", json=body).job
        if job is None:  # the agent always answers a started job; None would be a broken agent
            raise AgentError("the agent started no training job")
        return job

    def training(self) -> TrainingJob | None:
        """The current or latest training job, None if none ran since the agent started."""
        return self._get(schemas.TrainingResponse, "GET", "/v1/train").job

    def gates(self) -> schemas.GatesResponse:
        return self._get(schemas.GatesResponse, "GET", "/v1/gates", timeout=300.0)

    def kpis(self, days: int = 30) -> schemas.KpisResponse:
        return self._get(schemas.KpisResponse, "GET", "/v1/kpis", params={"days": days})

    def drift(self) -> schemas.DriftResponse:
        """The drift status of the production model and the latest window checks."""
        return self._get(schemas.DriftResponse, "GET", "/v1/drift")

    def rebaseline_drift(self, reason: str | None = None) -> schemas.DriftStatus:
        """Accept today's traffic as normal: production's next windows become its drift reference."""
        return self._get(schemas.DriftStatus, "POST", "/v1/drift/rebaseline", json={"reason": reason})

    def groups(self, key: str | None = None) -> schemas.GroupsResponse:
        """Production's accuracy on operator labels per group (``key``: one tag, e.g. "line")."""
        params = {"key": key} if key else None
        return self._get(schemas.GroupsResponse, "GET", "/v1/groups", params=params)

    def report(self, days: int = 30) -> schemas.ReportResponse:
        """The KPI report of the last ``days`` UTC days (``edge_agent.report.build_report``'s document)."""
        return self._get(schemas.ReportResponse, "GET", "/v1/report", params={"days": days})

    def federation(self) -> schemas.FederationResponse:
        """Joined or not, updates sent (from the egress ledger), the last one, bytes by kind."""
        return self._get(schemas.FederationResponse, "GET", "/v1/federation")

    def egress(self, limit: int = 100) -> schemas.ChainResponse:
        return self._get(schemas.ChainResponse, "GET", "/v1/egress", params={"limit": limit})

    def audit(self, limit: int = 100) -> schemas.ChainResponse:
        return self._get(schemas.ChainResponse, "GET", "/v1/audit", params={"limit": limit})

    def _get(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        """One call, its answer validated against the route's response model."""
        answer = self._call(method, path, **kwargs)
        try:
            return model.model_validate(answer)
        except ValidationError as exc:  # an agent of another version, or a broken one
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "body"
            raise AgentError(
                f"the agent's answer to {method} {path} does not fit this client ({where}: {problem['msg']})"
            ) from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._response(method, path, **kwargs).json()

    def _response(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            if timeout is not None:
                kwargs["timeout"] = timeout
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise AgentUnavailableError(f"the agent at {self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise AgentUnavailableError(
                f"cannot reach the agent at {self.base_url} ({type(exc).__name__}); "
                "is 'genba agent serve' running?"
            ) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response


def _item(text: str | None, image: bytes | None, groups: dict[str, str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"groups": groups or {}}
    if text is not None:
        body["text"] = text
    if image is not None:
        body["image"] = base64.b64encode(image).decode("ascii")
    return body


def _error_from(response: httpx.Response) -> AgentError:
    try:
        body = response.json()["error"]
        code, message = str(body.get("code", "")), str(body["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message = "", f"the agent answered HTTP {response.status_code}"
    kind = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, AgentError)
    error = kind(message)
    error.status = response.status_code
    return error


def _token(site: SiteFolder, role: str | None) -> str:
    """The requested role's token, or the most capable one this user may read."""
    for candidate in [role] if role else ["supervisor", "operator", "integration"]:
        assert candidate in ROLES, candidate
        try:
            return site.read_token(candidate)
        except KeyFileError:
            if role:
                raise
    raise KeyFileError(
        f"this user may read no token in {site.tokens_dir}; ask IT to add you to a genba group"
    )
