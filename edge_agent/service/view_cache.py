"""Read views answered from a cache at most ``api.view_max_age_s`` old, as plain ASGI.

An operator's app polls every view (status, KPIs, report, queue, audit...) and several apps may
poll one agent. Each of these answers costs the agent's CPU (tens of milliseconds for a month's
report on a small PC), and that CPU is what the line's predictions run on. A view answered once
is therefore kept for ``view_max_age_s`` (default 2 s) and served again, byte for byte, to any
caller of the same role asking for the same path and query; however fast apps poll, the agent
computes each view at most once per max-age.

What a cached answer may miss, and for how long:

- an operator's or IT's own change through the API (a label, an install, a promotion, a training
  job, a re-baseline: any request but a GET or a prediction) empties the cache when it arrives and
  again when it is answered, so whoever changed something sees it at once;
- the line's predictions and what the agent does by itself (its gate and drift checks, a training
  job ending, a federation round) show up within ``view_max_age_s``.

However many apps poll, and however fast, they share a pace: each role may ask for
``api.polled_views_per_second`` views a second (two seconds' worth at once); a request beyond it
waits for its turn, and one that would wait more than ``MAX_WAIT_S`` is refused with 429 and
``Retry-After``. An app stuck in a loop (or ten apps) costs the line no more than one polite app.

Every request still has its token checked here (a revoked or wrong token is never answered from
the cache), answers other than 200 are never kept, a view is computed once however many callers
miss it together, and the cache holds a bounded number of answers of bounded size.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from genba.errors import GenbaError

Scope = dict[str, Any]
Message = dict[str, Any]

#: The views an app polls; anything else (images, explanations, the OpenAPI document) passes by.
CACHED_PATHS: Final = frozenset(
    {
        "/v1/status",
        "/v1/gates",
        "/v1/queue",
        "/v1/kpis",
        "/v1/report",
        "/v1/drift",
        "/v1/groups",
        "/v1/models",
        "/v1/federation",
        "/v1/train",
        "/v1/audit",
        "/v1/egress",
    }
)
#: Requests that are the line's traffic, not a change an operator waits to see.
TRAFFIC_PATHS: Final = frozenset({"/v1/predict", "/v1/predict/batch"})
MAX_WAIT_S: Final = 2.0
MAX_ENTRIES: Final = 64
MAX_BODY_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class _Answer:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    made: float


@dataclass
class _Pace:
    """A token bucket of one role's views; tokens below zero are turns already promised."""

    tokens: float
    updated: float


class ViewCache:
    """ASGI middleware in front of the API; ``role_for`` names the role of an Authorization header
    (or raises a :class:`GenbaError`, and the request goes on to be refused by the API itself)."""

    def __init__(
        self, app: Any, role_for: Callable[[str | None], str], max_age_s: float, per_second: float
    ) -> None:
        self.app = app
        self.role_for = role_for
        self.max_age_s = max_age_s
        self.per_second = per_second
        self._paces: dict[str, _Pace] = {}
        self._answers: OrderedDict[tuple[str, bytes, str], _Answer] = OrderedDict()
        self._computing: dict[tuple[str, bytes, str], asyncio.Future[None]] = {}
        self._generation = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            await self._change(scope, receive, send, forget=path not in TRAFFIC_PATHS)
            return
        key = self._key(scope) if method == "GET" and path in CACHED_PATHS else None
        if key is None:
            await self.app(scope, receive, send)
            return
        wait = self._turn(key[2])
        if wait is None:
            await _too_many(send, key[0], self.per_second)
            return
        if wait > 0:
            await asyncio.sleep(wait)
        if self.max_age_s <= 0:
            await self.app(scope, receive, send)
            return
        await self._view(key, scope, receive, send)

    def clear(self) -> None:
        self._generation += 1
        self._answers.clear()

    async def _change(self, scope: Scope, receive: Any, send: Any, *, forget: bool) -> None:
        if not forget:
            await self.app(scope, receive, send)
            return
        self.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            self.clear()

    def _key(self, scope: Scope) -> tuple[str, bytes, str] | None:
        authorization = _header(scope, b"authorization")
        try:
            role = self.role_for(authorization.decode("latin-1") if authorization is not None else None)
        except GenbaError:
            return None  # the API answers it (401) as it would without the cache
        return scope["path"], scope.get("query_string", b""), role

    def _turn(self, role: str) -> float | None:
        """Seconds until this role's next view may be answered, or None when that is too long."""
        if self.per_second <= 0:
            return 0.0
        now, burst = time.monotonic(), 2.0 * self.per_second
        pace = self._paces.setdefault(role, _Pace(burst, now))
        pace.tokens = min(burst, pace.tokens + (now - pace.updated) * self.per_second) - 1.0
        pace.updated = now
        wait = max(0.0, -pace.tokens / self.per_second)
        if wait > MAX_WAIT_S:
            pace.tokens += 1.0  # refused: the turn is not taken
            return None
        return wait

    async def _view(self, key: tuple[str, bytes, str], scope: Scope, receive: Any, send: Any) -> None:
        while True:
            if (answer := self._fresh(key)) is not None:
                await _replay(answer, send)
                return
            pending = self._computing.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)  # someone computes it: wait, then take theirs
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._computing[key] = done
        try:
            await self._compute(key, scope, receive, send)
        finally:
            del self._computing[key]
            done.set_result(None)

    def _fresh(self, key: tuple[str, bytes, str]) -> _Answer | None:
        answer = self._answers.get(key)
        if answer is None:
            return None
        if time.monotonic() - answer.made >= self.max_age_s:
            del self._answers[key]
            return None
        return answer

    async def _compute(self, key: tuple[str, bytes, str], scope: Scope, receive: Any, send: Any) -> None:
        generation, started = self._generation, time.monotonic()
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *self._cache_control()]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and len(body) <= MAX_BODY_BYTES:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if status == 200 and generation == self._generation and len(body) <= MAX_BODY_BYTES:
            self._keep(key, _Answer(headers, bytes(body), started))

    def _keep(self, key: tuple[str, bytes, str], answer: _Answer) -> None:
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > MAX_ENTRIES:
            self._answers.popitem(last=False)

    def _cache_control(self) -> list[tuple[bytes, bytes]]:
        return [(b"cache-control", f"private, max-age={int(self.max_age_s)}".encode())]


async def _replay(answer: _Answer, send: Any) -> None:
    age = int(time.monotonic() - answer.made)
    headers = [*answer.headers, (b"age", str(age).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _too_many(send: Any, path: str, per_second: float) -> None:
    message = (
        f"too many requests for {path}: this role's apps ask for more than "
        f"{per_second:g} views a second (api.polled_views_per_second); poll less often"
    )
    body = json.dumps({"error": {"code": "too_many_requests", "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None
