"""Benchmark: the operator app's desktop program (make gui-app): its size, how fast its window
comes up against a real agent, and that it carries none of the forbidden packages.

The built folder (``dist/genba-gui``; ``--build`` runs ``make gui-app`` first) is measured on
disk, and packaging/gui/check_app.py (run with the build environment's Python) confirms that
torch, onnxruntime, flwr, ray, transformers and scipy are absent. A real agent then serves the
default bundle on loopback with a few reports queued, and the built binary runs
``--check`` offscreen, ``--runs`` times after one warm-up: from the process start to its
"window shown" line (the event loop running with the window shown) and to its exit (status and
review queue loaded). The same check from the source install (``python -m genba gui --check``)
runs beside it, as the reference.

    .venv/bin/python bench/gui_app.py [--build] [--app dist/genba-gui] [--runs 5]

``--smoke`` (``make gui-app-smoke``, run by CI after ``make test``): one timed run, nothing written
to docs/bench, and a non-zero exit unless the built app's check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "bench"
BUILD_PYTHON = ROOT / ".venv-gui-build" / "bin" / "python"
CHECK_APP = ROOT / "packaging" / "gui" / "check_app.py"
WINDOW_SHOWN = "genba gui: window shown"
REPORTS = [f"report {n}: scratch on the housing near part {n}, surface dull" for n in range(12)]


def main() -> int | str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", action="store_true", help="run 'make gui-app' first (timed)")
    parser.add_argument("--app", type=Path, default=ROOT / "dist" / "genba-gui")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-out/gui_app"))
    parser.add_argument("--smoke", action="store_true", help="CI's check: one run, docs/bench untouched")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 1
    build_s = _build() if args.build else None
    binary = args.app / "genba-gui"
    if not binary.is_file():
        sys.exit(f"no built app at {args.app}; run 'make gui-app' first (or pass --build)")
    figures = {
        "what": "the operator app's one-folder build (PyInstaller), started offscreen against a real agent",
        "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "build_s": build_s,
        **_contents(args.app),
        **_start_times(binary, args.out, args.runs),
    }
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gui_app.json").write_text(text + "\n", encoding="utf-8")
    if args.smoke:
        passed = figures["forbidden_absent"] and "check passed" in figures["check_line"]
        return 0 if passed else f"the built app's smoke check failed: {figures['check_line']}"
    (DOCS / "gui_app.json").write_text(text + "\n", encoding="utf-8")
    return 0


def _build() -> float:
    started = time.perf_counter()
    subprocess.run(["make", "-C", str(ROOT), "gui-app"], check=True)
    return round(time.perf_counter() - started, 1)


def _commit() -> str:
    command = ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def _contents(app: Path) -> dict[str, Any]:
    """Size on disk, the largest parts, and check_app's verdict on the forbidden packages."""
    files = [path for path in app.rglob("*") if path.is_file() and not path.is_symlink()]
    size = sum(path.stat().st_size for path in files)
    internal = app / "_internal"
    parts = {
        entry.name: sum(p.stat().st_size for p in _files(entry)) for entry in internal.iterdir()
    }  # fmt: skip
    largest = sorted(parts.items(), key=lambda item: -item[1])[:6]
    done = subprocess.run(
        [str(BUILD_PYTHON), str(CHECK_APP), str(app)], capture_output=True, text=True, timeout=300
    )
    return {
        "size_mb": round(size / 1e6, 1),
        "size_mib": round(size / 2**20, 1),
        "files": len(files),
        "largest_parts_mb": {name: round(bytes_ / 1e6, 1) for name, bytes_ in largest},
        "forbidden_absent": done.returncode == 0,
        "check_app": (done.stdout or done.stderr).strip(),
    }


def _files(entry: Path) -> list[Path]:
    if entry.is_symlink():
        return []
    if entry.is_file():
        return [entry]
    return [path for path in entry.rglob("*") if path.is_file() and not path.is_symlink()]


def _start_times(binary: Path, out: Path, runs: int) -> dict[str, Any]:
    """The built binary's and the source install's ``--check``, timed against one serving agent."""
    from genba.demo.sites import served_site, signed_default_bundle

    bundle, trust = signed_default_bundle(ROOT / "bench-out" / "default-bundle")
    with served_site(out / "site-a", bundle, trust) as site:
        from edge_agent.service.client import AgentClient

        with AgentClient.for_site(site.root, "supervisor") as client:
            client.predict_batch(REPORTS)
        frozen = [str(binary), "--data", str(site.root), "--lang", "en", "--check"]
        source = [sys.executable, "-m", "genba", "gui", "--data", str(site.root), "--lang", "en", "--check"]
        _timed(frozen), _timed(source)  # warm-up: files into the page cache
        app_runs, source_runs = [], []
        for _ in range(runs):  # alternated, so that a load on the machine weighs on both alike
            app_runs.append(_timed(frozen))
            source_runs.append(_timed(source))
    app_window, source_window = _median(app_runs, 0), _median(source_runs, 0)
    return {
        "runs": runs,
        "start_to_window_s": app_window,
        "start_to_check_done_s": _median(app_runs, 1),
        "check_line": app_runs[-1][2],
        "source_install_start_to_window_s": source_window,
        "source_install_start_to_check_done_s": _median(source_runs, 1),
        "window_time_ratio_app_vs_source": round(app_window / source_window, 2),
        "app_runs_window_and_done_s": [run[:2] for run in app_runs],
        "source_runs_window_and_done_s": [run[:2] for run in source_runs],
    }


def _timed(command: list[str]) -> tuple[float, float, str]:
    """Seconds from starting ``command`` to its "window shown" line and to its exit, and its last line."""
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment, cwd=ROOT
    )
    assert process.stdout is not None
    window_s, last = None, ""
    for line in process.stdout:
        if line.strip() == WINDOW_SHOWN and window_s is None:
            window_s = time.perf_counter() - started
        last = line.strip()
    code = process.wait(timeout=120)
    done_s = time.perf_counter() - started
    if code != 0 or window_s is None:
        sys.exit(f"{command[0]} --check failed with exit code {code}; run it by hand to see its error line")
    return round(window_s, 3), round(done_s, 3), last


def _median(runs: list[tuple[float, float, str]], index: int) -> float:
    return round(statistics.median(float(run[index]) for run in runs), 3)


if __name__ == "__main__":
    sys.exit(main())
