"""The report as Markdown: a headline table, one section per figure with its daily table and plot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NONE = "—"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{100.0 * value:.1f} %"


def number(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def measured(value: float | None, unit: str, digits: int = 1) -> str:
    return NONE if value is None else f"{number(value, digits)} {unit}"


def _basis(figure: Mapping[str, Any], basis: str) -> str:
    return figure["reason"] if figure["reason"] else basis


def headline(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, what it rests on or why it is missing), for the table and the CLI summary."""
    accuracy, acceptance = report["accuracy"]["overall"], report["acceptance"]["overall"]
    audited = report.get("accuracy_audit", {}).get("overall")
    agreement, lead = report["agreement"]["overall"], report["lead_time"]
    effort, latency = report["operator_effort"]["overall"], report["latency"]["overall"]
    drift, money = report["drift"]["total"], report["cost_benefit"]
    seconds = f"{number(effort['seconds_mean'])} / {number(effort['seconds_median'])} s"
    return [
        (
            "Accuracy on operator labels",
            percent(accuracy["value"]),
            _basis(accuracy, f"{accuracy['labelled']} labels"),
        ),
        (
            "Acceptance without correction",
            percent(acceptance["value"]),
            _basis(acceptance, f"{acceptance['labelled']} labels"),
        ),
        *(
            [
                (
                    "Accuracy on the audit sample (unbiased)",
                    percent(audited["value"]),
                    _basis(audited, f"{audited['labelled']} labels of randomly drawn inputs"),
                )
            ]
            if audited
            else []
        ),
        (
            "Candidate–production agreement",
            percent(agreement["value"]),
            _basis(agreement, f"{agreement['compared']} inputs answered by both"),
        ),
        (
            "Lead time to production (median)",
            measured(lead["median_hours"], "h"),
            _basis(lead, f"{lead['counted']} models"),
        ),
        ("Seconds per label (mean / median)", seconds, _basis(effort, f"{effort['timed']} timed labels")),
        (
            "Labels per day",
            number(effort["labels_per_day"]),
            f"{_count(effort['labels'], 'label')} over {_count(effort['running_days'], 'running day')}",
        ),
        (
            "Latency p50 / p95",
            f"{number(latency['p50_ms'])} / {number(latency['p95_ms'])} ms",
            _basis(latency, f"{latency['answers']} production answers"),
        ),
        (
            "Drift events",
            f"{drift['warning']} warning, {drift['drift']} drift",
            f"{drift['checks']} windows checked",
        ),
        (
            "Net benefit (estimate)",
            measured(money["total"]["net"], money["currency"], 2),
            money["reason"] or "see Cost–benefit",
        ),
    ]


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    def cells(values: Sequence[object]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    listed = [cells(row) for row in rows]
    if not listed:
        return ["No day in the window has data for this table.", ""]
    return [cells(header), "|" + "---|" * len(header), *listed, ""]


def render_markdown(report: Mapping[str, Any], images: Mapping[str, str], no_plots: str | None = None) -> str:
    """``images``: plot name → file name relative to the Markdown file; a plot missing from it is
    left out. ``no_plots``: why there are none (said once, under the headline)."""
    window = report["window"]
    lines = [
        f"# Genba KPI report{' — ' + report['site'] if report['site'] else ''}",
        "",
        f"Window: {window['first_day']} to {window['last_day']} ({window['days']} UTC days, "
        f"{_count(window['running_days'], 'running day')}). Generated {report['generated_at']}.",
        f"A figure with too few data behind it shows {NONE} and the reason (minimums: "
        f"{report['minimums']['labels']} labels, {report['minimums']['answers']} answers). "
        "Daily tables list the days with data; the plots show every day.",
        "",
        "## Headline",
        "",
        *table(("Figure", "Value", "Basis"), headline(report)),
        *([f"Plots: none in this report ({no_plots}).", ""] if no_plots else []),
    ]
    lines += _quality(report, _picture(images, "quality", "Accuracy, acceptance and agreement"))
    lines += _latency(report, _picture(images, "latency", "Latency p50 and p95"))
    lines += _effort(report, _picture(images, "effort", "Labels per day and seconds per label"))
    lines += _lead_time(report) + _drift(report, _picture(images, "drift", "Drift checks per day"))
    lines += _costs(report) + ["## Definitions", ""]
    lines += [f"- **{name}**: {text}" for name, text in report["definitions"].items()]
    return "\n".join(lines) + "\n"


def _picture(images: Mapping[str, str], name: str, title: str) -> list[str]:
    """The Markdown lines of plot ``name``: its image and a blank line, or nothing without it."""
    return [f"![{title}]({images[name]})", ""] if name in images else []


def _reasons(*figures: Mapping[str, Any]) -> str:
    return "; ".join(f["reason"] for f in figures if f["reason"]) or ""


def _quality(report: Mapping[str, Any], image: list[str]) -> list[str]:
    days = zip(
        report["accuracy"]["daily"], report["acceptance"]["daily"], report["agreement"]["daily"], strict=True
    )
    rows = [
        (
            acc["day"],
            acc["labelled"],
            percent(acc["value"]),
            percent(accept["value"]),
            agree["compared"],
            percent(agree["value"]),
            _reasons(acc, agree),
        )
        for acc, accept, agree in days
        if acc["labelled"] or agree["compared"]
    ]
    header = ("Day", "Labels", "Accuracy", "Acceptance", "Compared", "Agreement", "Reason")
    return [
        "## Accuracy, acceptance and agreement",
        "",
        *image,
        *table(header, rows),
    ]


def _latency(report: Mapping[str, Any], image: list[str]) -> list[str]:
    rows = [
        (d["day"], d["answers"], number(d["p50_ms"]), number(d["p95_ms"]), d["reason"] or "")
        for d in report["latency"]["daily"]
        if d["answers"]
    ]
    return [
        "## Latency of production answers",
        "",
        *image,
        *table(("Day", "Answers", "p50 ms", "p95 ms", "Reason"), rows),
    ]


def _effort(report: Mapping[str, Any], image: list[str]) -> list[str]:
    rows = [
        (
            d["day"],
            d["labels"],
            d["timed"],
            number(d["seconds_mean"]),
            number(d["seconds_median"]),
            d["reason"] or "",
        )
        for d in report["operator_effort"]["daily"]
        if d["labels"]
    ]
    header = ("Day", "Labels", "Timed", "Mean s", "Median s", "Reason")
    return [
        "## Operator effort",
        "",
        *image,
        *table(header, rows),
    ]


def _lead_time(report: Mapping[str, Any]) -> list[str]:
    lead = report["lead_time"]
    rows = [
        (
            m["name"],
            m.get("version_label", m["version"]),
            _time(m["installed_at"]),
            _time(m["production_at"]),
            number(m["hours"]),
            "yes" if m["via_candidate"] else "no (installed straight into production)",
        )
        for m in lead["models"]
    ]
    header = ("Model", "Version", "Arrived", "In production", "Hours", "Counted in the median")
    summary = f"Median: {number(lead['median_hours'])} h" + (f" ({lead['reason']})" if lead["reason"] else "")
    return ["## Lead time to production", "", summary, "", *table(header, rows)]


def _drift(report: Mapping[str, Any], image: list[str]) -> list[str]:
    drift = report["drift"]
    rows = [
        (
            e["time"],
            e["model_id"],
            e["status"],
            e["feature"],
            NONE if e["p_value"] is None else f"{e['p_value']:.3g}",
        )
        for e in drift["events"]
    ]
    total = drift["total"]
    lines = [
        "## Drift events",
        "",
        *image,
        f"{total['checks']} windows checked: {total['warning']} warning, {total['drift']} drift.",
        "",
    ]
    return lines + (table(("Time", "Model", "Status", "Feature", "p-value"), rows) if rows else [])


def _costs(report: Mapping[str, Any]) -> list[str]:
    money = report["cost_benefit"]
    prices = ", ".join(f"{name} = {value:g}" for name, value in money["prices"].items())
    formulas = [f"    {name} = {formula}" for name, formula in money["formulas"].items()]
    columns = ("served", "labelling_seconds", "operator_saved", "model_errors", "pc", "net")
    rows = [(d["day"], *(_money(d[c]) for c in columns)) for d in money["daily"] if d["served"]]
    rows.append(("**Total**", *(_money(money["total"][c]) for c in columns)))
    lines = [f"## Cost–benefit estimate ({money['currency']})", "", f"Prices: {prices}.", "", *formulas, ""]
    if money["reason"]:
        lines += [f"Model errors and net are not estimated: {money['reason']}.", ""]
    return lines + table(("Day", "Served", "Labelling s", "Saved", "Model errors", "PC", "Net"), rows)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _money(value: float | None) -> str:
    return number(value, 2) if isinstance(value, float) else (NONE if value is None else str(value))


def _time(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")
