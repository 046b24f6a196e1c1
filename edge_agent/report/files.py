"""Write the report into a folder (JSON, Markdown, PNGs), each file atomically, and summarise it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.report.markdown import headline, render_markdown
from edge_agent.report.plots import PLOTS, draw
from genba.errors import OutputPathError, install_command


def write_report(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and one PNG per plot in ``out_dir``; returns name → path.

    The plots need matplotlib (the ``site-plots`` extra); without it the report has its tables and
    says why it has no plots. Each file appears whole or not at all (temporary file, then
    ``os.replace``); the JSON is written last, so a folder with a ``report.json`` holds a complete
    report.
    """
    out_dir = Path(out_dir)
    no_plots = why_no_plots()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        drawn = () if no_plots else PLOTS
        written = {name: _atomic(out_dir / f"{name}.png", _plot(name, report)) for name in drawn}
        markdown = render_markdown(report, {name: path.name for name, path in written.items()}, no_plots)
        written["markdown"] = _atomic(out_dir / "report.md", _text(markdown))
        text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        written["json"] = _atomic(out_dir / "report.json", _text(text))
    except OSError as exc:
        raise OutputPathError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from exc
    return written


def why_no_plots() -> str | None:
    """None where the plots can be drawn; else the reason and what to install, for the report."""
    from genba.roles import installed

    if installed("matplotlib"):
        return None
    hint = install_command("site-plots")
    return f"matplotlib is not installed on this PC; install Genba's site-plots extra for them: {hint}"


def _plot(name: str, report: Mapping[str, Any]) -> Callable[[Path], object]:
    return lambda path: draw(name, report, path)


def _text(content: str) -> Callable[[Path], object]:
    return lambda path: path.write_text(content, encoding="utf-8")


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few lines for a terminal: the headline figures, each with its basis or why it is missing."""
    window = report["window"]
    site = f" for {report['site']}" if report["site"] else ""
    lines = [f"KPI report{site}: {window['first_day']} to {window['last_day']} ({window['days']} UTC days)"]
    return lines + [f"  {figure}: {value} ({basis})" for figure, value, basis in headline(report)]
