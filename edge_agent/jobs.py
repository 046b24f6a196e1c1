"""Training jobs: site training runs in its own process (torch never loads into the serving agent).

One job at a time. The child reads the site store through WAL while the agent keeps
serving, writes a candidate bundle signed with the site's key under
``DATA/candidates/``, and prints one JSON line. The agent then installs that
bundle like any other: verified, copied in, candidate in shadow, gated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genba import env
from genba.errors import GenbaError, RolloutError, UsageError

if TYPE_CHECKING:
    from edge_agent.agent import Agent

MODES = ("head", "last-k")


@dataclass
class TrainingJob:
    id: str
    mode: str
    actor: str
    seed: int
    state: str = "running"  # running | succeeded | failed
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    message: str | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def training_command(data: Path, mode: str, out: Path, signing_key: Path, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "edge_agent.training", "--data", str(data), "--mode", mode,
        "--out", str(out), "--signing-key", str(signing_key), "--seed", str(seed),
    ]  # fmt: skip


def run_training(
    data: Path,
    mode: str,
    out: Path,
    signing_key: Path,
    seed: int,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> dict[str, Any]:
    """Run the training process to completion; its result, or its one-line error as a GenbaError.

    ``started`` receives the child as soon as it runs, so its owner can stop it.
    """
    if mode not in MODES:
        raise UsageError(f"training mode {mode!r} is not available; use one of {', '.join(MODES)}")
    child = subprocess.Popen(
        training_command(data, mode, out, signing_key, seed),
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
    """The agent's one training slot, run on a background thread."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.current: TrainingJob | None = None
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None

    def start(self, *, mode: str, actor: str, seed: int = 0) -> TrainingJob:
        if mode not in MODES:
            raise UsageError(f"training mode {mode!r} is not available; use one of {', '.join(MODES)}")
        with self._lock:
            if self.current is not None and self.current.state == "running":
                raise RolloutError(f"training job {self.current.id} is still running; wait for it to finish")
            job = TrainingJob(id=time.strftime("%Y%m%d-%H%M%S"), mode=mode, actor=actor, seed=seed)
            self.current = job
        self.agent.store.append_audit("train_started", actor, {"job": job.id, "mode": mode, "seed": seed})
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
        site = self.agent.site
        out = site.root / "candidates" / f"{job.id}-{job.mode}"
        try:
            result = run_training(site.root, job.mode, out, site.site_key_file, job.seed, self._adopt)
            installed = self.agent.install(Path(result["bundle"]), actor=job.actor)
            job.result = {"training": result, "installed": installed["installed"]}
            job.state = "succeeded"
        except GenbaError as error:
            job.state, job.message = "failed", str(error)
        job.finished_at = time.time()
        details = {"job": job.id, "state": job.state, "message": job.message}
        self.agent.store.append_audit("train_finished", job.actor, details)
