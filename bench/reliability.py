"""``make reliability``: soak, polling, fuzzing and faults in one run, one JSON summary.

* **Soak** (``bench/soak.py``): a real agent with several clients, an operator labelling and an app
  reading every view, killed with SIGKILL once on the way and at the end; ``soak_requests``
  (predictions and labels acknowledged), ``soak_lost`` (acknowledged but not in the store; target 0),
  ``rss_growth_pct`` (target <= 5).
* **Polling** (``bench/serving_under_polling.py``): ``predict_p99_ms_alone``,
  ``predict_p99_ms_with_polling`` and their ratio (target <= 1.5).
* **Fuzzing** (``bench/fuzz.py``): ``fuzz_inputs`` and ``fuzz_crashes`` per target (target 0).
* **Faults**: the tests marked ``fault`` (a restarted SuperLink, a cut network, a full disk, an
  expiring certificate, a clock jump, kill -9), ``--fault-loops`` times, plus the soak's own kill;
  ``faults_injected`` and ``faults_survived`` (targets equal).
* ``power_cut_safe``: the default durability flushes every acknowledged write before answering,
  seen by tests/edge_agent/service/test_agent_durability.py (strace), and the soak's agent said so.

``--short`` is the version ``make test`` runs (tests/bench/test_reliability.py): a soak of seconds on
the bundle given, small polling and fuzzing budgets, no fault loops (the suite runs those tests).

    .venv/bin/python bench/reliability.py [--soak-minutes 30] [--fault-loops 3] [--out bench-out/reliability]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from bench_site import add_bundle_arguments, bundle_and_trust

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DURABILITY_TEST = "tests/edge_agent/service/test_agent_durability.py"
TARGETS = {
    "soak_lost": "== 0",
    "rss_growth_pct": "<= 5",
    "polling_over_alone": "<= 1.5",
    "fuzz_crashes": "0 per target",
    "faults_survived": "== faults_injected",
    "power_cut_safe": "true",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="the version make test runs (seconds)")
    parser.add_argument("--soak-minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--fuzz-examples", type=int, default=2000)
    parser.add_argument("--fault-loops", type=int, default=3)
    add_bundle_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out/reliability"))
    args = parser.parse_args()
    print(json.dumps(run(args, bundle_and_trust(parser, args)), indent=2))
    return 0


def run(args: argparse.Namespace, served: tuple[Path, Path]) -> dict[str, Any]:
    started = time.monotonic()
    bundle, trust = served
    soaked = _soak(args, bundle, trust)
    polling = _polling(args, bundle, trust)
    fuzzing = _fuzzing(args)
    faults = _faults(0 if args.short else args.fault_loops, soaked, args.out)
    safe, durability_detail = _power_cut_safe(args.short, soaked, args.out)
    return {
        "soak_requests": soaked["soak_requests"],
        "soak_lost": soaked["soak_lost"],
        "rss_growth_pct": soaked["rss_growth_pct"],
        "predict_p99_ms_alone": polling["predict_p99_ms_alone"],
        "predict_p99_ms_with_polling": polling["predict_p99_ms_with_polling"],
        "polling_over_alone": polling["polling_over_alone"],
        "fuzz_inputs": fuzzing["fuzz_inputs"],
        "fuzz_crashes": fuzzing["fuzz_crashes"],
        "faults_injected": faults["injected"],
        "faults_survived": faults["survived"],
        "power_cut_safe": safe,
        "targets": TARGETS,
        "details": {
            "mode": "short" if args.short else "long",
            "minutes": round((time.monotonic() - started) / 60.0, 1),
            "soak": soaked,
            "polling": polling.get("details"),
            "fuzz_seconds": fuzzing.get("seconds"),
            "faults": faults,
            "durability": durability_detail,
            "bundle": str(bundle),
        },
    }


def _soak(args: argparse.Namespace, bundle: Path, trust: Path) -> dict[str, Any]:
    from soak import SoakConfig, soak

    if args.short:
        config = SoakConfig(seconds=25.0, clients=2, kill_at=0.3, warm_up_s=2.0, rss_every_s=0.5)
    else:
        config = SoakConfig(seconds=args.soak_minutes * 60.0, clients=args.clients)
    return soak(config, bundle, trust, args.out / "soak")


def _polling(args: argparse.Namespace, bundle: Path, trust: Path) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "serving_under_polling.py"), "--bundle", str(bundle),
               "--trust", str(trust), "--out", str(args.out / "polling")]  # fmt: skip
    if args.short:
        command += ["--requests", "150", "--rounds", "1", "--audit-entries", "2000",
                    "--egress-entries", "500", "--answered", "300"]  # fmt: skip
    return _json_of(command, "bench/serving_under_polling.py")


def _fuzzing(args: argparse.Namespace) -> dict[str, Any]:
    examples = 30 if args.short else args.fuzz_examples
    return _json_of([sys.executable, str(BENCH / "fuzz.py"), "--examples", str(examples)], "bench/fuzz.py")


def _faults(loops: int, soaked: dict[str, Any], out: Path) -> dict[str, Any]:
    """The fault-marked tests ``loops`` times, and the soak's own kill -9 and restart."""
    kills = soaked["details"]["agent_kills"]
    soak_survived = kills if soaked["soak_lost"] == 0 and _store_whole(soaked) else 0
    runs = [_pytest(["-m", "fault"], out / f"faults-{loop}.xml") for loop in range(loops)]
    injected = kills + sum(run["ran"] for run in runs)
    survived = soak_survived + sum(run["passed"] for run in runs)
    failed = sorted({name for run in runs for name in run["failed"]})
    why = {name: reason for run in runs for name, reason in run["why"].items()}
    return {
        "injected": injected, "survived": survived, "soak_kills": kills, "loops": loops, "failed": failed,
        "why": why,
    }  # fmt: skip


def _power_cut_safe(short: bool, soaked: dict[str, Any], out: Path) -> tuple[bool, dict[str, Any]]:
    """The default durability, and (in the long run) the strace test that sees its flushes."""
    from edge_agent.config import StoreConfig

    default = StoreConfig().durability
    detail: dict[str, Any] = {"default": default, "soak_agent": soaked["details"]["durability"]}
    seen = True
    if not short:
        result = _pytest([DURABILITY_TEST], out / "durability.xml")
        detail["flushes_seen_by_strace"] = result
        seen = result["ran"] > 0 and result["passed"] == result["ran"]
    return default == "power_cut" and soaked["details"]["durability"] == "power_cut" and seen, detail


def _store_whole(soaked: dict[str, Any]) -> bool:
    store = soaked["details"]["store"]
    return bool(store["integrity"] == "ok" and all(store["chains_intact"].values()))


def _pytest(selection: list[str], report: Path) -> dict[str, Any]:
    report = report.resolve()
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *selection,
    ]
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _junit(report)


def _junit(report: Path) -> dict[str, Any]:
    """How many ran and passed; each failure's name, and the first line of why (its message)."""
    ran, passed, failed, why = 0, 0, [], {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        outcome = {child.tag: child for child in case}
        if "skipped" in outcome:
            continue
        ran += 1
        problem = outcome.get("failure", outcome.get("error"))
        if problem is None:
            passed += 1
            continue
        name = f"{case.get('classname')}::{case.get('name')}"
        failed.append(name)
        message = (problem.get("message") or "").strip()
        why[name] = message.splitlines()[0][:300] if message else ""
    return {"ran": ran, "passed": passed, "failed": failed, "why": why}


def _json_of(command: list[str], what: str) -> dict[str, Any]:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    document: dict[str, Any] = json.loads(done.stdout)
    return document


if __name__ == "__main__":
    sys.exit(main())
