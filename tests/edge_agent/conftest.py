"""Site folders, bundle versions and real agent processes (uvicorn on an ephemeral loopback port)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site


def _load_harness() -> ModuleType:
    path = Path(__file__).with_name("harness.py")
    spec = importlib.util.spec_from_file_location("genba_tests_agent_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


@pytest.fixture(scope="session")
def agent_harness() -> ModuleType:
    return harness


@pytest.fixture
def make_site(tmp_path: Path, keypair: tuple[Path, Path]) -> Callable[..., SiteFolder]:
    def make(name: str = "site-a", settings: dict[str, dict[str, Any]] | None = None) -> SiteFolder:
        site = init_site(tmp_path / name, site_name=name, trust=[keypair[1]])
        harness.write_settings(site, settings or harness.TEST_SETTINGS)
        return site

    return make


@pytest.fixture(scope="session")
def bundle_versions(
    bert_bundle: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[int, Path]:
    """The tiny BERT bundle as versions 1, 2 and 3 of one model, all signed by IT's key."""
    root = tmp_path_factory.mktemp("versions")
    return {v: harness.reversion(bert_bundle, keypair[0], root / f"v{v}", v) for v in (1, 2, 3)}


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[[SiteFolder], Any]]:
    started: list[Any] = []

    def start(site: SiteFolder) -> Any:
        process = harness.AgentProcess(site, tmp_path / f"{site.root.name}-agent.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)


@pytest.fixture
def waiter() -> Callable[..., Any]:
    return harness.wait_for


@pytest.fixture
def make_version(keypair: tuple[Path, Path], tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def make(
        bundle: Path, version: int, edit: Callable[[Path], None] | None = None, key: Path | None = None
    ) -> Path:
        return harness.reversion(
            bundle, key or keypair[0], tmp_path / f"made-{next(counter)}-v{version}", version, edit
        )

    return make
