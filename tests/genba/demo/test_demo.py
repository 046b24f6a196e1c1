"""`genba demo`, shortened: the whole story end to end, its report, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba import env
from genba.demo.story import DemoConfig, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
SECAGG_KINDS = {"secagg_public_keys", "secagg_key_shares", "masked_update", "secagg_unmask_shares"}


def _processes_under(folder: Path) -> list[str]:
    """Command lines of live processes that mention ``folder`` (agents, SuperNodes, the SuperLink)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command:
            found.append(command)
    return found


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    config = DemoConfig(
        out=out, rounds=1, stream_items=120, rollout_items=160, eval_items=80, labels_per_class=3,
        gates={"min_items": 40, "min_labels": 3, "evaluate_every_s": 0.5},
    )  # fmt: skip
    lines: list[str] = []
    summary = run(config, say=lines.append)
    return out, {"summary": summary, "lines": lines}


def test_a_short_demo_tells_the_whole_story_and_reports_it(short_demo: tuple[Path, dict[str, Any]]) -> None:
    out, result = short_demo
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary == json.loads(json.dumps(result["summary"], default=str))
    assert set(summary["sites"]) == {"site-a", "site-b", "site-c"}
    for name, site in summary["sites"].items():
        for model in ("untuned", "local_only", "federated"):
            assert 0.0 <= site[model] <= 1.0, (name, model)
        assert set(site["bytes_out"]) >= SECAGG_KINDS, site["bytes_out"]
        assert sum(site["labels"].values()) >= 3
        stages = [s["stage"] for s in site["rollout"]["stages"]]
        assert stages and stages[0] in ("shadow", "pilot", "production")  # the global bundle arrived
        assert Path(site["kpis"]["report"]).is_file()
    assert summary["federation"]["rounds_aggregated"] == [1]
    assert summary["bundles"]["federated"]["version"] >= 2
    for step in ("provision", "export", "install", "stream", "label", "local_training", "federated_training",
                 "rollout", "evaluate", "report"):  # fmt: skip
        assert summary["steps_s"][step] >= 0.0
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Accuracy", "## Federated training", "## What left each site", "## Time per step"):
        assert heading in report
    for plot in ("accuracy.png", "bytes_out.png", "steps.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(line.startswith("mean") for line in result["lines"])  # the terminal summary


def test_no_report_text_left_any_site(short_demo: tuple[Path, dict[str, Any]]) -> None:
    out, result = short_demo
    for site in result["summary"]["sites"].values():
        with SiteStore.read_only(SiteFolder(Path(site["folder"])).store_file) as store:
            texts = [bytes(i.payload) for i in store.uncertain_unlabelled(limit=50)]
            ledger = json.dumps([e.fields for e in store.egress(limit=100_000)]).encode()
        assert texts and not any(text in ledger for text in texts if len(text) > 12)


def test_the_demo_leaves_no_process_behind_and_can_run_again(short_demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = short_demo
    assert _processes_under(out) == []


def test_ctrl_c_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    command = [sys.executable, "-m", "genba", "demo", "--out", str(out), "--rounds", "1"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env.child_environment(),
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not any("serve" in c for c in _processes_under(out)) and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    output = process.communicate(timeout=120)[0].decode(errors="replace")
    assert process.returncode == 130, output
    assert "interrupted" in output
    time.sleep(1)
    assert _processes_under(out) == []


def test_it_exported_a_signed_bundle_of_the_packaged_minilm_with_a_passing_int8_variant(
    short_demo: tuple[Path, dict[str, Any]],
) -> None:
    """IT's bundle is signed and quantized where quantizing pays: an int8 variant a quarter of the
    fp32 size passed its gates, and the variant shipped is the one the recorded speed rule picks
    (fp32 only when int8 was not shown faster on this machine and fp32 is the more accurate)."""
    from export.datasets import LABELS
    from genba import bundle, keys

    out, result = short_demo
    exported = Path(result["summary"]["bundles"]["exported"]["path"])
    trusted = [keys.load_public_key(out / "work" / "it" / "it" / "it-sign.pem.pub")]
    manifest = bundle.verify_directory(exported, trusted).manifest
    assert manifest.precision is not None and manifest.validation is not None
    assert manifest.graphs["head"].precision == "fp32" and manifest.labels == tuple(LABELS)
    candidates = {c["name"]: c for c in manifest.validation["candidates"]}
    fp32 = candidates["fp32"]
    int8 = [c for c in candidates.values() if c["precision"] == "int8" and c["passed"]]
    assert int8 and all(c["accuracy_delta_pts"] <= 1.0 for c in int8)
    assert min(c["file_bytes"] for c in int8) <= 0.3 * fp32["file_bytes"]
    chosen = next(c for c in candidates.values() if c["chosen"])
    speed = manifest.validation["speed"]
    assert chosen["passed"] and chosen["accuracy_delta_pts"] <= 1.0
    assert chosen["name"] == speed["chosen"] == manifest.precision.variant and chosen["name"] in speed["tied"]
    assert all(candidates[name]["accuracy"] <= chosen["accuracy"] for name in speed["tied"])
    assert manifest.files["backbone.onnx"].bytes == chosen["file_bytes"]
    assert manifest.precision.backbone == chosen["precision"]


def test_the_default_head_is_a_real_classifier(short_demo: tuple[Path, dict[str, Any]]) -> None:
    from export.default_model import default_central_split
    from genba import bundle
    from genba.runtime import BundleModel, RuntimeConfig

    _, result = short_demo
    model = BundleModel(
        bundle.verify_directory(Path(result["summary"]["bundles"]["exported"]["path"]), None),
        RuntimeConfig(provider="cpu"),
    )
    reports = default_central_split(seed=0).eval
    predictions = [
        p.label
        for i in range(0, len(reports), 32)
        for p in model.predict([r.text for r in reports[i : i + 32]])
    ]
    accuracy = sum(p == r.label for p, r in zip(predictions, reports, strict=True)) / len(reports)
    assert accuracy >= 0.6, f"default head accuracy {accuracy:.3f} is barely above chance (1/6)"
    candidates = (model.manifest.validation or {})["candidates"]
    manifest_accuracy = next(c for c in candidates if c["chosen"])["accuracy"]
    assert abs(accuracy - manifest_accuracy) < 1e-6
