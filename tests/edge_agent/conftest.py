"""Site folders, bundle versions and real agent processes (uvicorn on an ephemeral loopback port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site


@pytest.fixture
def make_site(tmp_path: Path, keypair: tuple[Path, Path], agent_harness: Any) -> Callable[..., SiteFolder]:
    def make(name: str = "site-a", settings: dict[str, dict[str, Any]] | None = None) -> SiteFolder:
        site = init_site(tmp_path / name, site_name=name, trust=[keypair[1]])
        agent_harness.write_settings(site, settings or agent_harness.TEST_SETTINGS)
        return site

    return make


@pytest.fixture
def agent_process(tmp_path: Path, agent_harness: Any) -> Iterator[Callable[[SiteFolder], Any]]:
    started: list[Any] = []

    def start(site: SiteFolder) -> Any:
        process = agent_harness.AgentProcess(site, tmp_path / f"{site.root.name}-agent.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)


@pytest.fixture
def waiter(agent_harness: Any) -> Callable[..., Any]:
    return agent_harness.wait_for


@pytest.fixture
def make_version(keypair: tuple[Path, Path], tmp_path: Path, agent_harness: Any) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def make(
        bundle: Path,
        version: int,
        edit: Callable[[Path], None] | None = None,
        key: Path | None = None,
        **updates: Any,
    ) -> Path:
        """``updates``: ``lineage_update`` and ``manifest_update`` for the harness's reversion."""
        out = tmp_path / f"made-{next(counter)}-v{version}"
        return agent_harness.reversion(bundle, key or keypair[0], out, version, edit, **updates)

    return make
