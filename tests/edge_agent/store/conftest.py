"""Fixtures for the site store tests: a real SQLite file in tmp_path and a clock the test moves.

Helpers are handed out as fixtures: with ``--import-mode=importlib`` a conftest cannot be imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.store import ModelRow, PredictionRecord, SiteStore

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(store_path: Path, clock: FakeClock) -> Iterator[SiteStore]:
    with SiteStore(store_path, clock=clock) as opened:
        yield opened


def _add_model(store: SiteStore, version: int = 1, name: str = "defects") -> ModelRow:
    return store.add_model(
        name=name,
        version=version,
        manifest_sha256=f"{version:064x}",
        path=f"/models/{name}-v{version}",
        signer_key_id="it-key",
        lineage={"parent": version - 1},
        manifest={"labels": ["dent", "scratch"]},
        installed_by="system",
    )


def _answer(
    model_id: int,
    label: str | None = "dent",
    *,
    stage: str = "production",
    margin: float | None = 0.5,
    latency_ms: float = 5.0,
    served: bool | None = None,
) -> PredictionRecord:
    """A prediction; served unless it is a shadow or evaluation answer."""
    is_served = stage in ("production", "pilot") if served is None else served
    return PredictionRecord(
        model_id=model_id,
        stage=stage,
        label=label,
        score=0.9,
        margin=margin,
        latency_ms=latency_ms,
        provider="CPUExecutionProvider",
        served=is_served,
    )


AddModel = Callable[..., ModelRow]
Answer = Callable[..., PredictionRecord]


@pytest.fixture
def add_model() -> AddModel:
    return _add_model


@pytest.fixture
def answer() -> Answer:
    return _answer
