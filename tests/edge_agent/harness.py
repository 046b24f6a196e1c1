"""Helpers for agent tests: site settings, bundle versions, a real agent process. Loaded by path."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.service.client import AgentClient
from edge_agent.site import SiteFolder
from genba import env, keys
from genba.bundle import MANIFEST_NAME, SIGNATURE_NAME, BundleWriter, canonical_bytes, verify_directory
from genba.versions import ModelVersion

#: Gates small enough for a test to walk a candidate through every stage in seconds.
TEST_SETTINGS: dict[str, dict[str, Any]] = {
    "runtime": {"provider": "cpu", "intra_op_threads": 1},
    "gates": {
        "min_items": 12,
        "min_labels": 6,
        "min_agreement": 0.5,
        "evidence": "all",  # tests label chosen reports; the audit sample's draw is tested on its own
        "evaluate_every_s": 0.2,
        "latency_p95_budget_ms": 5000.0,
    },
    "batching": {"max_batch_size": 16, "max_wait_ms": 2.0},
    "store": {"audit_share": 0.0},  # the queue's order is tested without random draws ahead of it
}


def write_settings(site: SiteFolder, settings: dict[str, dict[str, Any]]) -> None:
    document = tomllib.loads(site.config_file.read_text(encoding="utf-8"))
    for section, values in settings.items():
        document.setdefault(section, {}).update(values)
    site.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")


def reversion(
    bundle: Path,
    key_path: Path,
    out: Path,
    version: int | ModelVersion,
    edit: Callable[[Path], None] | None = None,
    lineage_update: dict[str, Any] | None = None,
    manifest_update: dict[str, Any] | None = None,
) -> Path:
    """A signed copy of ``bundle`` with another version number (and optionally edited files or lineage).

    ``manifest_update`` is applied to the signed manifest as written, valid or not (a writer
    refuses to sign a manifest a reader would refuse; a test needs such bundles anyway).
    """
    verified = verify_directory(bundle, None)
    signing_key = keys.load_private_key(key_path)
    with BundleWriter(out) as writer:
        for name in verified.manifest.files:
            (writer.root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle / name, writer.root / name)
        if edit is not None:
            edit(writer.root)
        manifest = {k: v for k, v in verified.manifest.to_json().items() if k not in {"files", "signer"}}
        version = version if isinstance(version, ModelVersion) else ModelVersion(version)
        model = {k: v for k, v in manifest["model"].items() if k != "revision"}
        manifest["model"] = {**model, **version.manifest_fields()}
        manifest["lineage"] = {**manifest["lineage"], **(lineage_update or {})}
        written = writer.commit(manifest, signing_key)
    if manifest_update:
        raw = canonical_bytes({**json.loads((written / MANIFEST_NAME).read_bytes()), **manifest_update})
        (written / MANIFEST_NAME).write_bytes(raw)
        (written / SIGNATURE_NAME).write_bytes(keys.sign(signing_key, raw))
    return written


class AgentProcess:
    """``genba agent serve`` in a child process, as a site runs it."""

    def __init__(self, site: SiteFolder, log_path: Path, wrapper: tuple[str, ...] = ()) -> None:
        """``wrapper``: a command the agent runs under (``strace ...``), as ``wrapper + [genba...]``."""
        self.site = site
        self.log_path = log_path
        self.wrapper = wrapper
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> AgentProcess:
        self.site.address_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        serve = [sys.executable, "-m", "genba", "agent", "serve", "--data", str(self.site.root)]
        command = [*self.wrapper, *serve]
        self.process = subprocess.Popen(  # under a wrapper, a group of its own: killpg ends both
            command, stdout=log, stderr=log, env=env.child_environment(), start_new_session=bool(self.wrapper)
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"agent exited with {self.process.returncode}: {self.log()}")
            if self.site.address_file.exists():
                return self
            time.sleep(0.05)
        raise AssertionError(f"agent did not start in {timeout} s: {self.log()}")

    @property
    def url(self) -> str:
        return str(json.loads(self.site.address_file.read_text())["url"])

    def client(self, role: str = "supervisor") -> AgentClient:
        return AgentClient(self.url, self.site.read_token(role))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def constant_head_bundle(bert_bundle: Path, key: Path, out: Path, label: str, version: int) -> Path:
    """The tiny BERT bundle with a head that always answers ``label``, signed with ``key``."""
    import numpy as np

    parent = verify_directory(bert_bundle, None)
    labels = list(parent.manifest.labels or ())
    bias = np.full(len(labels), -5.0, dtype=np.float32)
    bias[labels.index(label)] = 5.0
    return _head_bundle(bert_bundle, key, out, version, weight_scale=0.0, bias=bias)


def random_head_bundle(bert_bundle: Path, key: Path, out: Path, version: int, seed: int = 0) -> Path:
    """The tiny BERT bundle with a random, input-dependent head (its certainty varies per input)."""
    return _head_bundle(bert_bundle, key, out, version, weight_scale=5.0, seed=seed)


def _head_bundle(
    bert_bundle: Path,
    key: Path,
    out: Path,
    version: int,
    *,
    weight_scale: float,
    bias: Any = None,
    seed: int = 0,
) -> Path:
    import numpy as np

    from export.graphs import HeadWeights
    from export.head_swap import read_head, write_head_swap

    parent = verify_directory(bert_bundle, None)
    head = read_head(parent)
    weight = (np.random.default_rng(seed).normal(size=head.weight.shape) * weight_scale).astype(
        head.weight.dtype
    )
    bias = np.zeros_like(head.bias) if bias is None else bias.astype(head.bias.dtype)
    write_head_swap(parent, HeadWeights(weight, bias), out, keys.load_private_key(key),
                    source={"kind": "test"}, report_key="test", report={}, version=version)  # fmt: skip
    return out
