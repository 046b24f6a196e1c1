"""The demo's report: ``summary.json``, ``report.md`` with PNG plots, each site's KPI report, and a
short summary in the terminal."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from genba.files import replace_atomically

MODELS = (("untuned", "untuned (IT's export)"), ("local_only", "local only"), ("federated", "federated"))


def write_summary(out: Path, summary: Mapping[str, Any]) -> Path:
    return _atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


def write_site_reports(out: Path, summary: dict[str, Any], site_folders: Mapping[str, Path]) -> None:
    """Each site's KPI report (``sites/NAME/``), its headline figures kept in the summary."""
    for name, folder in site_folders.items():
        summary["sites"][name]["kpis"] = _site_kpis(name, folder, out / "sites" / name)


def finish_report(out: Path, summary: Mapping[str, Any]) -> Path:
    """``summary.json``, the plots and ``report.md``."""
    out.mkdir(parents=True, exist_ok=True)
    _accuracy_plot(summary, out / "accuracy.png")
    _bytes_plot(summary, out / "bytes_out.png")
    _steps_plot(summary, out / "steps.png")
    write_summary(out, summary)
    return _atomic(out / "report.md", render(summary))


def render(summary: Mapping[str, Any]) -> str:
    sites = summary["sites"]
    lines = [
        "# Genba demo",
        "",
        "IT exported the packaged MiniLM classifier to a signed bundle; each site served its own report "
        "stream through its agent; operators labelled a few items per class from the queue; each site "
        "trained a head on its own labels (local only); the sites then trained together under SecAgg+ "
        "through a real SuperLink, and the global bundle went through shadow and pilot at every site. "
        "Accuracies are on each site's evaluation split (reports no one labelled).",
        "",
        "## Accuracy",
        "",
        "![Accuracy per site](accuracy.png)",
        "",
        "| site | untuned | local only | federated | labels given | global bundle at the end |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, site in sites.items():
        rollout = site.get("rollout") or {}
        stages = " → ".join(f"{s['stage']} ({s['after_items']})" for s in rollout.get("stages") or []) or "—"
        labels = sum((site.get("labels") or {}).values())
        lines.append(
            f"| {name} | {_pct(site['untuned'])} | {_pct(site['local_only'])} | {_pct(site['federated'])} "
            f"| {labels} | {stages} |"
        )
    lines += [f"| **mean** | {_mean_pct(sites, 'untuned')} | {_mean_pct(sites, 'local_only')} "
              f"| {_mean_pct(sites, 'federated')} | | |", ""]  # fmt: skip
    lines += [
        "The last column follows the global bundle at each site: its stage after N reports served "
        "since it arrived. The gates (agreement with production, accuracy on held-out operator labels, "
        "every group, latency) decide each step; nothing bypasses them.",
        "",
        *_federation(summary),
        *_serving(sites),
        *_egress(sites),
        *_bundles(summary),
        *_steps(summary),
    ]
    return "\n".join(lines) + "\n"


def say_summary(summary: Mapping[str, Any], out: Path, say: Callable[[str], None]) -> None:
    sites = summary["sites"]
    say("")
    say(f"{'site':<8} {'untuned':>8} {'local':>8} {'federated':>10}  bytes out   global bundle")
    for name, site in sites.items():
        stages = (site.get("rollout") or {}).get("stages") or []
        final = stages[-1]["stage"] if stages else "—"
        accuracies = f"{_pct(site['untuned']):>8} {_pct(site['local_only']):>8} {_pct(site['federated']):>10}"
        say(f"{name:<8} {accuracies}  {sum(site['bytes_out'].values()):>9,}   {final}")
    say(f"{'mean':<8} {_mean_pct(sites, 'untuned'):>8} {_mean_pct(sites, 'local_only'):>8} "
        f"{_mean_pct(sites, 'federated'):>10}")  # fmt: skip
    total = sum(summary["steps_s"].values())
    say(f"took {total:.0f} s · report: {out / 'report.md'} · summary: {out / 'summary.json'}")


# ------------------------------------------------------------------ sections


def _federation(summary: Mapping[str, Any]) -> list[str]:
    federation = summary["federation"]
    privacy = federation.get("privacy") or {}
    epsilon = privacy.get("epsilon")
    by_round = federation.get("accuracy_by_round") or {}
    rounds = ", ".join(
        f"round {r}: {_pct(v)}" for r, v in sorted(by_round.items(), key=lambda kv: int(kv[0]))
    )
    return [
        "## Federated training",
        "",
        f"{federation['rounds']} rounds of FedAvg under SecAgg+ (a real SuperLink with TLS and node "
        f"authentication, one SuperNode per site); rounds aggregated: {federation.get('rounds_aggregated')}. "
        f"Accuracy on the sites' held-out labels after each round: {rounds or '—'}.",
        "",
        f"Differential privacy: ε = {epsilon:.2f} at δ = {privacy.get('delta')}."
        if epsilon is not None
        else "Differential privacy: off (`genba demo --dp-noise 1.0` adds it; ε is then reported here).",
        "",
    ]  # fmt: skip


def _serving(sites: Mapping[str, Any]) -> list[str]:
    header = "| site | provider | latency p50 | latency p95 | production version | KPI report |"
    lines = ["## Serving", "", header, "| --- | --- | ---: | ---: | ---: | --- |"]
    for name, site in sites.items():
        lines.append(
            f"| {name} | {site.get('provider') or '—'} | {_ms(site.get('latency_ms_p50'))} "
            f"| {_ms(site.get('latency_ms_p95'))} | v{site.get('production_version')} "
            f"| [sites/{name}/report.md](sites/{name}/report.md) |"
        )
    return [*lines, ""]


def _egress(sites: Mapping[str, Any]) -> list[str]:
    kinds = sorted({kind for site in sites.values() for kind in site["bytes_out"]})
    lines = [
        "## What left each site",
        "",
        "From each site's egress ledger (every message the site sent, hash-chained). No report, label "
        "or embedding is among them: only SecAgg+ keys and shares, masked updates, evaluation figures "
        "and bundle receipts.",
        "",
        "![Bytes out per site](bytes_out.png)",
        "",
        "| site | " + " | ".join(kinds) + " | total |",
        "| --- | " + " | ".join("---:" for _ in kinds) + " | ---: |",
    ]
    for name, site in sites.items():
        cells = [f"{site['bytes_out'].get(kind, 0):,}" for kind in kinds]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(site['bytes_out'].values()):,} |")
    return [*lines, ""]


def _bundles(summary: Mapping[str, Any]) -> list[str]:
    bundles = summary["bundles"]
    exported, federated = bundles["exported"], bundles["federated"]
    return [
        "## Bundles",
        "",
        f"- exported by IT: {exported['bytes'] / 1e6:.1f} MB ({exported['path']})",
        f"- federated v{federated.get('version')}: {(federated.get('bytes') or 0) / 1e6:.1f} MB on disk; "
        "a head swap, so only the new head travelled to the sites",
        "",
    ]


def _steps(summary: Mapping[str, Any]) -> list[str]:
    steps = summary["steps_s"]
    rows = [f"| {name.replace('_', ' ')} | {seconds:.1f} |" for name, seconds in steps.items()]
    return ["## Time per step", "", "![Time per step](steps.png)", "", "| step | seconds |", "| --- | ---: |",
            *rows, f"| **total** | {sum(steps.values()):.1f} |", ""]  # fmt: skip


# ------------------------------------------------------------------ plots and KPI reports


def _accuracy_plot(summary: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    names = list(summary["sites"])
    figure, axes = plt.subplots(figsize=(8, 4.2))
    width = 0.26
    for offset, (key, title) in enumerate(MODELS):
        values = [(summary["sites"][n].get(key) or 0.0) * 100 for n in names]
        bars = axes.bar([i + (offset - 1) * width for i in range(len(names))], values, width, label=title)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("accuracy on the evaluation split (%)")
    axes.set_ylim(0, 100)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=3, frameon=False)
    axes.set_title("Accuracy per site")
    _save(figure, path)


def _bytes_plot(summary: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    names = list(summary["sites"])
    kinds = sorted({k for s in summary["sites"].values() for k in s["bytes_out"]})
    figure, axes = plt.subplots(figsize=(8, 4.2))
    bottom = [0.0] * len(names)
    for kind in kinds:
        values = [summary["sites"][n]["bytes_out"].get(kind, 0) / 1e6 for n in names]
        axes.bar(names, values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("MB sent (egress ledger)")
    axes.set_title("What left each site, by kind")
    axes.legend(fontsize=8)
    _save(figure, path)


def _steps_plot(summary: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    steps = summary["steps_s"]
    figure, axes = plt.subplots(figsize=(8, 3.6))
    axes.barh([s.replace("_", " ") for s in steps][::-1], list(steps.values())[::-1])
    axes.set_xlabel("seconds")
    axes.set_title("Time per step")
    _save(figure, path)


def _site_kpis(name: str, folder: Path, out: Path) -> dict[str, Any]:
    from edge_agent.config import load_agent_config
    from edge_agent.report import build_report
    from edge_agent.report import write_report as write_kpi_report
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore

    site = SiteFolder(folder)
    config = load_agent_config(site.config_file)
    with SiteStore.read_only(site.store_file) as store:
        report = build_report(store, config.costs, days=1, site=name)
    write_kpi_report(report, out)
    return {
        "accuracy": report["accuracy"]["overall"].get("value"),
        "acceptance": report["acceptance"]["overall"].get("value"),
        "report": str(out / "report.md"),
    }


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, dpi=110, format="png")
    _pyplot().close(figure)
    os.replace(tmp, path)


def _atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_atomically(path, text.encode("utf-8"))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _mean_pct(sites: Mapping[str, Any], key: str) -> str:
    values = [site[key] for site in sites.values() if site.get(key) is not None]
    return _pct(sum(values) / len(values)) if values else "—"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"
