"""Site folders, bundle versions and real agent processes (uvicorn on an ephemeral loopback port)."""

from __future__ import annotations

import errno
import os
import subprocess
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


class SmallDisk:
    """A filesystem of its own (tmpfs) that a test fills up for real and frees again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self, leave: int = 0) -> None:
        """Take every free byte, then give back ``leave`` bytes (rounded to pages by the filesystem)."""
        chunk = b"\0" * (1 << 16)
        with self.filler.open("ab") as out:
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        size = self.filler.stat().st_size
        os.truncate(self.filler, max(0, size - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        return os.statvfs(self.root).f_bavail * os.statvfs(self.root).f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real 16 MB filesystem (tmpfs) mounted for the test: a full disk is a real ENOSPC there.

    Mounting needs root (or CAP_SYS_ADMIN), as in the CI container and here; elsewhere the test
    says why it cannot run.
    """
    root = tmp_path / "small-disk"
    root.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "genba-small-disk", str(root)]
    try:
        mounted = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:  # no mount command at all
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "--lazy", str(root)], capture_output=True, check=False)
