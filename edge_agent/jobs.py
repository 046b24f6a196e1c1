"""Training jobs: site training runs in its own process (torch never loads into the serving agent).

One job at a time. The child reads the site store through WAL while the agent keeps
serving, writes a candidate bundle signed with the site's key into a folder of the job's own
under ``DATA/candidates/``, and prints one JSON line. The agent then installs that
bundle like any other: verified, copied in, candidate in shadow, gated. The job's folder is
removed however the job ends: a failed job leaves nothing, and a succeeded one's bundle lives on
as the installed copy under ``DATA/models``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge_agent.training_modes import TRAINING_MODES
from genba import env
from genba.errors import GenbaError, RolloutError, UsageError

if TYPE_CHECKING:
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore


class Install(Protocol):
    """Installs a bundle folder as ``actor`` and says what it installed (``Agent.install``)."""

    def __call__(self, source: Path, *, actor: str) -> dict[str, Any]: ...


log = logging.getLogger(__name__)

MODES = TRAINING_MODES


@dataclass
class TrainingJob:
    id: str
    mode: str
    actor: str
    seed: int
    unlabelled: str = "off"  # off | adapt | pseudo (edge_agent.training.adapt)
    state: str = "running"  # running | succeeded | failed
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    message: str | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def training_command(
    data: Path, mode: str, out: Path, signing_key: Path, seed: int, unlabelled: str = "off"
) -> list[str]:
    return [
        sys.executable, "-m", "edge_agent.training", "--data", str(data), "--mode", mode,
        "--out", str(out), "--signing-key", str(signing_key), "--seed", str(seed),
        "--unlabelled", unlabelled,
    ]  # fmt: skip


def run_training(
    data: Path,
    mode: str,
    out: Path,
    signing_key: Path,
    seed: int,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
    unlabelled: str = "off",
) -> dict[str, Any]:
    """Run the training process to completion; its result, or its one-line error as a GenbaError.

    ``started`` receives the child as soon as it runs, so its owner can stop it.
    """
    if mode not in MODES:
        raise UsageError(f"training mode {mode!r} is not available; use one of {', '.join(MODES)}")
    child = subprocess.Popen(
        training_command(data, mode, out, signing_key, seed, unlabelled),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.child_environment(),
    )  # fmt: skip
    if started is not None:
        started(child)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        fallback = f"training exited with code {child.returncode}"
        raise TrainingFailedError(lines[-1].split(": error: ", 1)[-1] if lines else fallback)
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    return dict(json.loads(lines[-1]))


class TrainingFailedError(GenbaError):
    """Site training ran but produced no candidate; the message is the training's own."""


class TrainingJobs:
    """The agent's one training slot, run on a background thread.

    It reads the site folder, audits to the store and hands the finished bundle to ``install``.
    """

    def __init__(self, site: SiteFolder, store: SiteStore, install: Install) -> None:
        self.site, self.store, self.install = site, store, install
        self.current: TrainingJob | None = None
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None

    def start(self, *, mode: str, actor: str, seed: int = 0, unlabelled: str = "off") -> TrainingJob:
        if mode not in MODES:
            raise UsageError(f"training mode {mode!r} is not available; use one of {', '.join(MODES)}")
        with self._lock:
            if self.current is not None and self.current.state == "running":
                raise RolloutError(f"training job {self.current.id} is still running; wait for it to finish")
            job = TrainingJob(
                id=time.strftime("%Y%m%d-%H%M%S"), mode=mode, actor=actor, seed=seed, unlabelled=unlabelled
            )
            self.current = job
        details = {"job": job.id, "mode": mode, "seed": seed, "unlabelled": unlabelled}
        self.store.append_audit("train_started", actor, details)
        threading.Thread(target=self._run, args=(job,), name="genba-training", daemon=True).start()
        return job

    def stop(self) -> None:
        """On shutdown: a training process never outlives the agent that started it."""
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    def _adopt(self, child: subprocess.Popen[str]) -> None:
        self._child = child

    def _run(self, job: TrainingJob) -> None:
        try:
            state, message, result = "succeeded", None, self._train_and_install(job)
        except GenbaError as error:
            state, message, result = "failed", str(error), None
        except Exception as error:  # a job stuck "running" would hold the one training slot until restart
            log.exception("training job %s failed", job.id)
            state, message, result = "failed", f"training job failed unexpectedly: {error}", None
        job.message, job.result, job.finished_at = message, result, time.time()
        self.store.append_audit("train_finished", job.actor, _finished_details(job, state))
        job.state = state  # last: whoever sees the job finished finds its folder gone and its audit entry

    def _train_and_install(self, job: TrainingJob) -> dict[str, Any]:
        return train_and_install(
            self.site, self.store, self.install,
            mode=job.mode, seed=job.seed, actor=job.actor, label=job.id, started=self._adopt,
            unlabelled=job.unlabelled,
        )  # fmt: skip


def train_and_install(
    site: SiteFolder,
    store: SiteStore,
    install: Install,
    *,
    mode: str,
    seed: int,
    actor: str,
    label: str,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
    unlabelled: str = "off",
) -> dict[str, Any]:
    """Train into a folder of the job's own and install from it; the folder goes however it ends.

    Installing copies the bundle into ``DATA/models`` (``ModelLibrary.copy_in``), so a
    succeeded job's folder holds nothing the site still needs. The folder's name is unique
    (``label`` is a timestamp to the second), so two jobs started within one second (or a job
    and ``genba agent train``) never share an output path, which the child would refuse.
    """
    root = site.root / "candidates"
    root.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix=f"{label}-{mode}-", dir=root, ignore_cleanup_errors=True)
    with scratch as folder:
        out = Path(folder) / "bundle"
        result = run_training(site.root, mode, out, site.site_key_file, seed, started, unlabelled)
        installed = install(out, actor=actor)["installed"]
    result["bundle"] = str(site.models_dir / store.get_model(installed["model_id"]).path)
    return {"training": result, "installed": installed}


def _finished_details(job: TrainingJob, state: str) -> dict[str, Any]:
    """The audit entry's details; a succeeded job names the candidate it installed (``name v3.1``)."""
    details: dict[str, Any] = {"job": job.id, "state": state, "message": job.message}
    if job.result is not None:
        installed = job.result["installed"]
        details["model"] = f"{installed['name']} v{installed['version_label']}"
    return details
