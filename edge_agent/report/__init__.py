"""The PoC KPI report: the few measured figures a rollout decision rests on.

``build_report`` reads the site store (``SiteStore.report_figures``: one snapshot) over the last
``days`` UTC days, today included, and returns a JSON-serialisable dict; ``write_report`` writes
it as ``report.json``, ``report.md`` and PNG plots (where matplotlib, the ``site-plots`` extra, is
installed; else the Markdown says why there are none). The figures (exact wording in
``edge_agent.report.definitions``, copied into every report):

- accuracy on operator labels, per day of the latest label: of labelled inputs production served
  an answer for, the share whose latest label equals production's latest served answer;
- acceptance: of the same inputs, the share no label of which ever corrected production;
- agreement: of inputs answered by a candidate stage (shadow/pilot) and by production, the share
  where both latest answers carry the same label, per day of the input;
- lead time: hours from a model's arrival (``models.installed_at``) to its first production start,
  and their median over models that passed a candidate stage first;
- operator effort: mean and median ``labels.operator_seconds`` (rows that have it), labels per day;
- latency p50/p95 of production answers, per day and overall;
- drift events: drift checks that ended in 'warning' or 'drift', and checks per day;
- a cost-benefit estimate with its formulas (``edge_agent.report.costs``).

A figure with too few data behind it (``min_labels`` labels, ``min_answers`` answers) is None
with a ``reason`` such as "4 labels on 2026-11-28, 5 needed".
"""

from __future__ import annotations

from edge_agent.report.build import build_report
from edge_agent.report.files import summary_lines, why_no_plots, write_report

__all__ = ["build_report", "summary_lines", "why_no_plots", "write_report"]
