"""The polled views' cache and pace (``edge_agent.service.view_cache``), attacked through real HTTP
requests to an app behind it: what may be answered from the cache, for whom, for how long, and what
an app polling in a loop gets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from edge_agent.service.auth import TokenRegistry
from edge_agent.service.view_cache import MAX_WAIT_S, ViewCache
from genba.errors import GenbaError

TOKENS = {"operator": "op-token", "supervisor": "sup-token"}


class Views:
    """An app with two polled views and the writes that may change them; it counts its work."""

    def __init__(self) -> None:
        self.computed: Counter[str] = Counter()
        self.value = 0
        self.slow = threading.Event()
        self.slow.set()
        self.status = 200
        app = FastAPI()

        @app.get("/v1/kpis")
        async def kpis(authorization: str = Header(...)) -> Any:
            try:
                role = TokenRegistry(TOKENS).role_for(authorization)
            except GenbaError as error:
                return JSONResponse({"error": {"code": "unauthorized", "message": str(error)}}, 401)
            self.computed["kpis"] += 1
            value = self.value  # the view's snapshot, taken before its (slow) work
            await asyncio.to_thread(self.slow.wait, 5)
            if self.status != 200:
                return JSONResponse({"error": {"code": "x", "message": "y"}}, status_code=self.status)
            return {"role": role, "value": value, "computed": self.computed["kpis"]}

        @app.get("/v1/inputs/1/image")
        async def image() -> Any:
            self.computed["image"] += 1
            return {"computed": self.computed["image"]}

        @app.post("/v1/labels")
        async def label() -> Any:
            self.value += 1
            return {"value": self.value}

        @app.post("/v1/predict")
        async def predict() -> Any:
            self.value += 1
            return {"value": self.value}

        self.app = app


def _client(views: Views, max_age_s: float = 60.0, per_second: float = 0.0) -> httpx.AsyncClient:
    registry = TokenRegistry(TOKENS)
    cached = ViewCache(views.app, registry.role_for, max_age_s=max_age_s, per_second=per_second)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=cached), base_url="http://agent")


def _as(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def test_a_view_is_computed_once_per_max_age_and_answered_byte_for_byte() -> None:
    async def scenario() -> None:
        views = Views()
        async with _client(views, max_age_s=0.4) as client:
            first = await client.get("/v1/kpis", headers=_as("operator"))
            again = [await client.get("/v1/kpis", headers=_as("operator")) for _ in range(20)]
            assert views.computed["kpis"] == 1
            assert all(a.content == first.content and a.status_code == 200 for a in again)
            assert first.headers["cache-control"] == "private, max-age=0" and "age" not in first.headers
            assert again[-1].headers["age"] == "0"
            await asyncio.sleep(0.45)
            later = await client.get("/v1/kpis", headers=_as("operator"))
            assert views.computed["kpis"] == 2 and later.json()["computed"] == 2

    asyncio.run(scenario())


def test_no_cache_at_max_age_zero_and_other_routes_are_never_cached() -> None:
    async def scenario() -> None:
        views = Views()
        async with _client(views, max_age_s=0.0) as client:
            for _ in range(3):
                await client.get("/v1/kpis", headers=_as("operator"))
                await client.get("/v1/inputs/1/image", headers=_as("operator"))
        assert views.computed == Counter({"kpis": 3, "image": 3})
        views = Views()
        async with _client(views) as client:
            for _ in range(3):
                await client.get("/v1/inputs/1/image", headers=_as("operator"))
        assert views.computed["image"] == 3

    asyncio.run(scenario())


def test_every_request_has_its_token_checked_and_each_role_gets_its_own_answer() -> None:
    async def scenario() -> None:
        views = Views()
        async with _client(views) as client:
            operator = await client.get("/v1/kpis", headers=_as("operator"))
            supervisor = await client.get("/v1/kpis", headers=_as("supervisor"))
            assert operator.json()["role"] == "operator" and supervisor.json()["role"] == "supervisor"
            assert views.computed["kpis"] == 2
            for headers in (
                {"Authorization": "Bearer op-token-but-wrong"},
                {},
                {"Authorization": "op-token"},
            ):
                refused = await client.get("/v1/kpis", headers=headers)
                assert refused.status_code in (401, 422) and "value" not in refused.text
            assert (await client.get("/v1/kpis", headers=_as("operator"))).json()["role"] == "operator"

    asyncio.run(scenario())


def test_an_operators_change_is_seen_at_once_but_the_lines_predictions_are_not_waited_for() -> None:
    async def scenario() -> None:
        views = Views()
        async with _client(views) as client:
            assert (await client.get("/v1/kpis", headers=_as("operator"))).json()["value"] == 0
            await client.post("/v1/predict", headers=_as("operator"))
            assert (await client.get("/v1/kpis", headers=_as("operator"))).json()["value"] == 0
            await client.post("/v1/labels", headers=_as("operator"))
            assert (await client.get("/v1/kpis", headers=_as("operator"))).json()["value"] == 2

    asyncio.run(scenario())


def test_a_view_computed_across_a_change_is_not_kept() -> None:
    async def scenario() -> None:
        views = Views()
        views.slow.clear()
        async with _client(views) as client:
            reading = asyncio.create_task(client.get("/v1/kpis", headers=_as("operator")))
            while views.computed["kpis"] == 0:
                await asyncio.sleep(0.01)
            await client.post("/v1/labels", headers=_as("operator"))  # arrives while it is computed
            views.slow.set()
            assert (await reading).json()["value"] == 0
            assert (await client.get("/v1/kpis", headers=_as("operator"))).json()["value"] == 1
            assert views.computed["kpis"] == 2

    asyncio.run(scenario())


def test_callers_missing_together_share_one_computation_and_failures_are_never_kept() -> None:
    async def scenario() -> None:
        views = Views()
        views.slow.clear()
        async with _client(views) as client:
            readers = [asyncio.create_task(client.get("/v1/kpis", headers=_as("operator"))) for _ in range(8)]
            await asyncio.sleep(0.2)
            views.slow.set()
            answers = await asyncio.gather(*readers)
            assert views.computed["kpis"] == 1 and {a.json()["computed"] for a in answers} == {1}
            views.status = 503
            await client.post("/v1/labels", headers=_as("operator"))
            assert (await client.get("/v1/kpis", headers=_as("operator"))).status_code == 503
            views.status = 200
            assert (await client.get("/v1/kpis", headers=_as("operator"))).status_code == 200
            assert views.computed["kpis"] == 3

    asyncio.run(scenario())


def test_an_app_polling_in_a_loop_is_paced_and_past_the_longest_wait_refused_with_the_error_shape() -> None:
    per_second = 10.0

    async def scenario() -> None:
        views = Views()
        async with _client(views, per_second=per_second) as client:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(client.get("/v1/kpis", headers=_as("operator")) for _ in range(60))
            )
            took = time.monotonic() - started
            served = [a for a in answers if a.status_code == 200]
            refused = [a for a in answers if a.status_code == 429]
            assert len(served) + len(refused) == 60
            # two seconds' worth at once, then one every 1/per_second for up to MAX_WAIT_S
            paced = 2 * per_second + MAX_WAIT_S * per_second
            assert paced <= len(served) <= paced + 2 and len(refused) >= 60 - paced - 2
            assert took >= MAX_WAIT_S - 0.2
            error = refused[0].json()["error"]
            assert error["code"] == "too_many_requests" and "api.polled_views_per_second" in error["message"]
            assert refused[0].headers["retry-after"] == "1" and "\n" not in error["message"]
            other = await client.get("/v1/kpis", headers=_as("supervisor"))  # its own pace
            assert other.status_code == 200

    asyncio.run(scenario())
