"""The report's cost-benefit estimate: a few multiplications a plant can redo by hand.

Per UTC day of the window:

- ``operator_saved = (manual_seconds_per_item × served − labelling_seconds) / 60 × operator_minute``
- ``model_errors = error_rate × served × escape_share × defect_escape``, with ``error_rate = 1 −
  accuracy`` (accuracy on operator labels over the whole window; one day's labels are too few to
  price) and ``escape_share`` the plant's estimate of wrong answers its operators do not catch
- ``pc = running × 24 × pc_hour`` (``running`` is 1 on days the site had a model installed)
- ``net = operator_saved − model_errors − pc``

Without an accuracy (too few labels) the error cost and the net are None, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from edge_agent.config import CostConfig

FORMULAS: Final[dict[str, str]] = {
    "operator_saved": "(manual_seconds_per_item × served − labelling_seconds) / 60 × operator_minute",
    "error_rate": "1 − accuracy on operator labels over the whole window",
    "model_errors": "error_rate × served × escape_share × defect_escape",
    "pc": "running × 24 h × pc_hour",
    "net": "operator_saved − model_errors − pc",
}
_MONEY: Final = ("operator_saved", "model_errors", "pc", "net")
_COUNTS: Final = ("served", "labelling_seconds", "untimed_labels", "running")


def cost_benefit(
    costs: CostConfig, days: Sequence[Mapping[str, Any]], accuracy: Mapping[str, Any]
) -> dict[str, Any]:
    """``days``: per day ``served``, ``labelling_seconds``, ``untimed_labels`` and ``running`` (0/1)."""
    error_rate = None if accuracy["value"] is None else 1.0 - accuracy["value"]
    daily = [{"day": day["day"], **_day_costs(costs, day, error_rate)} for day in days]
    total: dict[str, Any] = {key: sum(row[key] for row in daily) for key in _COUNTS}
    for key in _MONEY:
        values = [row[key] for row in daily]
        total[key] = None if None in values else sum(values)
    return {
        "currency": costs.currency,
        "prices": {
            "operator_minute": costs.operator_minute,
            "defect_escape": costs.defect_escape,
            "escape_share": costs.escape_share,
            "pc_hour": costs.pc_hour,
            "manual_seconds_per_item": costs.manual_seconds_per_item,
        },
        "formulas": FORMULAS,
        "error_rate": error_rate,
        "reason": None if error_rate is not None else f"no accuracy: {accuracy['reason']}",
        "daily": daily,
        "total": total,
    }


def _day_costs(costs: CostConfig, day: Mapping[str, Any], error_rate: float | None) -> dict[str, Any]:
    manual_seconds = costs.manual_seconds_per_item * day["served"]
    saved = (manual_seconds - day["labelling_seconds"]) / 60.0 * costs.operator_minute
    escapes = None if error_rate is None else error_rate * day["served"] * costs.escape_share
    errors = None if escapes is None else escapes * costs.defect_escape
    pc = day["running"] * 24.0 * costs.pc_hour
    return {
        **{key: day[key] for key in _COUNTS},
        "operator_saved": saved,
        "model_errors": errors,
        "pc": pc,
        "net": None if errors is None else saved - errors - pc,
    }
