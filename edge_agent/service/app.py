"""The local API: a thin FastAPI shell over :class:`edge_agent.agent.Agent`.

Answers from the micro-batcher are awaited (the event loop never blocks on a
model); everything touching the store or loading a model runs in FastAPI's
thread pool. Errors leave as ``{"error": {"code", "message"}}`` with one line.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParameter
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.config import ApiConfig
from edge_agent.labelling import queue_entry, stored_image
from edge_agent.service import schemas
from edge_agent.service.auth import TokenRegistry, authorize
from edge_agent.service.limits import BodySizeLimit
from edge_agent.service.readers import ExplanationSlots, Readers
from edge_agent.service.view_cache import ViewCache
from edge_agent.store import ChainEntry
from genba.errors import (
    BundleError,
    GenbaError,
    ImageTooLargeError,
    InputFileError,
    UnknownItemError,
    UsageError,
    error_code,
    located,
)
from genba.versions import ModelVersion

#: Explanations being computed (one) or waiting for it; one more is refused with 503. Each occludes
#: its input 64 times on the production model: many at once would take the line's cores and memory.
EXPLANATIONS_AT_ONCE = 2

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 429, 500, 503)
}


def asgi_app(agent: Agent, tokens: TokenRegistry, config: ApiConfig) -> Any:
    """The app as served: the size limit wraps everything, so no oversized body is ever parsed; polled
    read views are answered from a cache at most ``view_max_age_s`` old (:mod:`.view_cache`)."""
    views = ViewCache(
        create_app(agent, tokens, config),
        tokens.role_for,
        max_age_s=config.view_max_age_s,
        per_second=config.polled_views_per_second,
    )
    return BodySizeLimit(views, config.max_request_bytes)


def create_app(agent: Agent, tokens: TokenRegistry, config: ApiConfig) -> FastAPI:
    app = FastAPI(
        title=f"Genba site agent ({agent.config.site})",
        version="1",
        description="Local API of a Genba site: loopback only, one bearer token per role.",
        responses=ERRORS,
    )
    _install_error_handlers(app)
    readers = Readers()
    explainer = Readers(threads=1)  # one explanation at a time, at the readers' low priority
    explanation_slot = app.state.explanations = ExplanationSlots(EXPLANATIONS_AT_ONCE)
    app.router.on_shutdown.extend([readers.close, explainer.close])

    def role_with(permission: str) -> Callable[..., Awaitable[str]]:
        async def dependency(authorization: str | None = Header(None)) -> str:
            # async: a plain def dependency would cost a thread-pool hop on every request
            return authorize(tokens.role_for(authorization), permission)

        return dependency

    predict_role = Depends(role_with("predict"))
    read_role = Depends(role_with("read"))
    manage_role = Depends(role_with("manage"))

    @app.get("/health", response_model=schemas.HealthResponse, tags=["status"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/predict", response_model=schemas.PredictResponse, tags=["predict"])
    async def predict(body: schemas.PredictRequest, role: str = predict_role) -> Any:
        item = await _item(agent, body, role, config)
        # A ready Response skips FastAPI re-validating what the agent built (the schema documents it).
        return _json(_with_warnings((await agent.apredict_one(item)).to_json(), agent, body.groups))

    @app.post("/v1/predict/batch", response_model=schemas.PredictBatchResponse, tags=["predict"])
    async def predict_batch(body: schemas.PredictBatchRequest, role: str = predict_role) -> Any:
        if len(body.items) > config.max_batch_items:
            raise UsageError(f"at most {config.max_batch_items} items per batch request")
        items = [await _batch_item(agent, entry, role, config, i) for i, entry in enumerate(body.items)]
        answers = await agent.apredict(items)
        return {
            "items": [
                _with_warnings(answer.to_json(), agent, entry.groups)
                for answer, entry in zip(answers, body.items, strict=True)
            ]
        }

    @app.post("/v1/labels", response_model=schemas.LabelResponse, tags=["labels"])
    def label(body: schemas.LabelRequest, role: str = Depends(role_with("label"))) -> Any:
        row = agent.label(
            body.input_id,
            body.label,
            actor=role,
            operator_seconds=body.operator_seconds,
            groups=dict(body.groups),
        )
        answer = {
            "label_id": row.id,
            "input_id": row.input_id,
            "label": row.label,
            "split": row.split,
            "is_correction": row.is_correction,
        }
        return _with_warnings(answer, agent, body.groups)

    @app.get(
        "/v1/inputs/{input_id}/explanation", response_model=schemas.ExplanationResponse, tags=["predict"]
    )
    async def explanation(
        input_id: int = PathParameter(ge=1, le=2**62), role: str = Depends(role_with("explain"))
    ) -> Any:
        with explanation_slot():
            return await explainer.run(agent.explain, input_id)

    @app.get(
        "/v1/inputs/{input_id}/image",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the stored image"}},
        tags=["labels"],
    )
    def input_image(
        input_id: int = PathParameter(ge=1, le=2**62), role: str = Depends(role_with("queue"))
    ) -> Response:
        """The image of a stored input, for the operator labelling it (never cached, never sniffed)."""
        payload, media_type = stored_image(agent.store, input_id)
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return Response(payload, media_type=media_type, headers=headers)

    @app.get("/v1/drift", response_model=schemas.DriftResponse, tags=["status"])
    async def drift(role: str = read_role) -> dict[str, Any]:
        return await readers.run(
            lambda: {**agent.drift_status(), "checks": agent.store.drift_checks(limit=50)}
        )

    @app.post("/v1/drift/rebaseline", response_model=schemas.DriftStatus, tags=["status"])
    def rebaseline_drift(body: schemas.RebaselineRequest, role: str = manage_role) -> dict[str, Any]:
        return agent.rebaseline_drift(actor=role, reason=body.reason)

    @app.get("/v1/groups", response_model=schemas.GroupsResponse, tags=["status"])
    async def groups(key: str | None = Query(None, max_length=64), role: str = read_role) -> dict[str, Any]:
        return await readers.run(agent.group_figures, key)

    @app.get("/v1/queue", response_model=schemas.QueueResponse, tags=["labels"])
    async def queue(limit: int = Query(20, ge=1, le=500), role: str = Depends(role_with("queue"))) -> Any:
        return await readers.run(lambda: {"items": [queue_entry(q) for q in agent.queue(limit)]})

    # Gate reports: a group too small to judge has no harm figures, and its keys stay out (exclude_unset).
    @app.get(
        "/v1/status",
        response_model=schemas.StatusResponse,
        response_model_exclude_unset=True,
        tags=["status"],
    )
    async def status(role: str = read_role) -> dict[str, Any]:
        return {"role": role, **(await readers.run(agent.status))}

    @app.get("/v1/models", response_model=schemas.ModelsResponse, tags=["models"])
    async def models(role: str = read_role) -> dict[str, Any]:
        return await readers.run(
            lambda: {"models": agent.models(), "history": agent.store.production_history()}
        )

    @app.post("/v1/models/install", response_model=schemas.InstallResponse, tags=["models"])
    def install(body: schemas.InstallRequest, role: str = manage_role) -> dict[str, Any]:
        return agent.install(Path(body.path), actor=role, rollback=body.rollback)

    @app.post("/v1/models/promote", response_model=schemas.PromoteResponse, tags=["models"])
    def promote(body: schemas.PromoteRequest, role: str = manage_role) -> dict[str, Any]:
        return agent.promote(actor=role, to_stage=body.to_stage)

    @app.post("/v1/models/discard", response_model=schemas.DiscardResponse, tags=["models"])
    def discard(body: schemas.DiscardRequest, role: str = manage_role) -> dict[str, Any]:
        return agent.discard(actor=role, reason=body.reason)

    @app.post("/v1/models/rollback", response_model=schemas.RollbackResponse, tags=["models"])
    def rollback(body: schemas.RollbackRequest, role: str = manage_role) -> dict[str, Any]:
        version = None if body.version is None else ModelVersion.parse(body.version)
        return agent.rollback(actor=role, version=version)

    @app.post("/v1/train", response_model=schemas.TrainingResponse, tags=["models"])
    def train(body: schemas.TrainRequest, role: str = manage_role) -> dict[str, Any]:
        job = agent.training.start(mode=body.mode, actor=role, seed=body.seed, unlabelled=body.unlabelled)
        return {"job": job.to_json()}

    @app.get("/v1/train", response_model=schemas.TrainingResponse, tags=["models"])
    async def training(role: str = read_role) -> dict[str, Any]:
        job = agent.training.current
        return {"job": job.to_json() if job else None}

    @app.get(
        "/v1/gates", response_model=schemas.GatesResponse, response_model_exclude_unset=True, tags=["models"]
    )
    async def gates(role: str = read_role) -> dict[str, Any]:
        return await readers.run(gate_view, agent)

    @app.get("/v1/kpis", response_model=schemas.KpisResponse, tags=["status"])
    async def kpis(days: int = Query(30, ge=1, le=3650), role: str = read_role) -> dict[str, Any]:
        return await readers.run(
            lambda: {"summary": agent.store.kpi_summary(), "daily": agent.store.kpi_daily(days)}
        )

    @app.get("/v1/report", response_model=schemas.ReportResponse, tags=["status"])
    async def report(days: int = Query(30, ge=1, le=3650), role: str = read_role) -> dict[str, Any]:
        return await readers.run(report_view, agent, days)

    @app.get("/v1/federation", response_model=schemas.FederationResponse, tags=["privacy"])
    async def federation(role: str = read_role) -> dict[str, Any]:
        from edge_agent.federation.state import federation_state

        return await readers.run(federation_state, agent.site, agent.store)

    @app.get("/v1/egress", response_model=schemas.ChainResponse, tags=["privacy"])
    async def egress(page: tuple[int, int] = Depends(_page), role: str = read_role) -> Any:
        return await readers.run(egress_view, agent, *page)

    @app.get("/v1/audit", response_model=schemas.ChainResponse, tags=["privacy"])
    async def audit(page: tuple[int, int] = Depends(_page), role: str = read_role) -> Any:
        return await readers.run(audit_view, agent, *page)

    return app


async def _item(agent: Agent, body: schemas.PredictRequest, role: str, config: ApiConfig) -> Item:
    kind = agent.expected_input_kind()
    if body.text is not None:
        if kind != "text":
            raise UsageError("this site's model takes images; send 'image' (base64 file bytes), not 'text'")
        if len(body.text) > config.max_text_chars:
            raise UsageError(
                f"text is {len(body.text)} characters, over this site's limit of {config.max_text_chars}"
            )
        return Item("text", body.text, body.text.encode("utf-8"), dict(body.groups), role)
    if kind != "image":
        raise UsageError("this site's model takes text; send 'text', not 'image'")
    raw = _base64(body.image or "")
    if len(raw) > config.image_bytes_limit:
        raise ImageTooLargeError(
            f"the image is too large ({len(raw):,} bytes; this site takes image files up to "
            f"{config.image_bytes_limit:,} bytes, api.max_image_bytes); send a smaller picture"
        )
    from edge_agent.answers import decode_payload

    image = await run_in_threadpool(decode_payload, "image", raw)
    return Item("image", image, raw, dict(body.groups), role)


async def _batch_item(
    agent: Agent, body: schemas.PredictRequest, role: str, config: ApiConfig, index: int
) -> Item:
    """One item of a batch request; an item the agent refuses is named by its index."""
    try:
        return await _item(agent, body, role, config)
    except UsageError as error:
        raise located(error, f"items[{index}]") from error


def _with_warnings(answer: dict[str, Any], agent: Agent, groups: Mapping[str, str]) -> dict[str, Any]:
    """Unknown group tags are kept and answered; the caller is told, once per tag."""
    if groups:
        from edge_agent.groups import unknown_tags

        if warnings := unknown_tags(groups, agent.config.groups):
            answer["warnings"] = warnings
    return answer


def _json(payload: Any) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputFileError("'image' is not valid base64") from exc


def gate_view(agent: Agent) -> dict[str, Any]:
    report = agent.gate_report()
    return {"gates": report.to_json() if report else None, "decisions": agent.store.decisions(limit=50)}


def report_view(agent: Agent, days: int) -> dict[str, Any]:
    from edge_agent.report import build_report
    from edge_agent.store import SiteStore

    # Its own read-only connection: a month of figures never holds the lock the answers are written under.
    with SiteStore.read_only(agent.store.path) as store:
        return build_report(store, agent.config.costs, days=days, site=agent.config.site)


def egress_view(agent: Agent, limit: int, offset: int) -> dict[str, Any]:
    entries = agent.store.egress(limit=limit, offset=offset)
    return _chain_page(agent, "egress", entries) | {"totals": agent.store.egress_totals()}


def audit_view(agent: Agent, limit: int, offset: int) -> dict[str, Any]:
    return _chain_page(agent, "audit", agent.store.audit(limit=limit, offset=offset))


async def _page(
    limit: int = Query(100, ge=1, le=5000), offset: int = Query(0, ge=0, le=1_000_000_000)
) -> tuple[int, int]:
    return limit, offset


def _chain_page(agent: Agent, chain: str, entries: list[ChainEntry]) -> dict[str, Any]:
    """Entries of a hash chain, with whether the whole chain still verifies."""
    return {
        "entries": [
            {"seq": e.seq, "created_at": e.created_at, "fields": e.fields, "hash": e.hash} for e in entries
        ],
        "verified": agent.store.verify_chain(chain).ok,
    }


def http_status(error: GenbaError) -> int:
    status = getattr(error, "status", None)  # agent and serving errors carry their own
    if isinstance(status, int):
        return status
    if isinstance(error, UnknownItemError):
        return 404
    if isinstance(error, BundleError):
        return 422
    if isinstance(error, UsageError):
        return 400
    return 500


def _install_error_handlers(app: FastAPI) -> None:
    """Every answer that is not a success has the one shape, whatever raised it."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, *_http_problem(request, error), dict(error.headers or {}) or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Uvicorn logs the traceback; the caller gets one line, never the input or the exception's text.
        return _error(
            500,
            "internal_error",
            f"the agent failed unexpectedly answering {request.method} {request.url.path} "
            f"({type(error).__name__}); nothing more is said here, the agent's log has the details",
        )

    @app.exception_handler(GenbaError)
    async def genba_error(request: Request, error: GenbaError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if http_status(error) == 401 else None
        return _error(http_status(error), error_code(type(error)), str(error), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", "the request body is not valid JSON")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":
            field = str((first.get("loc") or ("",))[-1])
            message = schemas.REFUSED_FIELDS.get(
                field, "unknown field; see /openapi.json for the fields this endpoint takes"
            )
        more = len(problems) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        return _error(422, "invalid_request", f"{where}: {message}{extra}")


def _http_problem(request: Request, error: StarletteHTTPException) -> tuple[str, str]:
    """Starlette's own refusals (an unknown route, a wrong method) said in the agent's words."""
    route = f"{request.method} {request.url.path[:200]}"
    if error.status_code == 404:
        return "not_found", f"no such route: {route}; see /openapi.json for this agent's routes"
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return "method_not_allowed", f"{route} is not allowed; this path takes {allowed or 'other methods'}"
    return f"http_{error.status_code}", f"{route}: {' '.join(str(error.detail).split())}"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)
