"""What each figure of the KPI report means, written into the report itself so a plant can check it."""

from __future__ import annotations

from typing import Final

DEFINITIONS: Final[dict[str, str]] = {
    "window": (
        "The last N UTC calendar days, today included: from 00:00 UTC of the first day to 24:00 UTC today. "
        "'Running days' are the days on or after the UTC day the site's first model was installed."
    ),
    "accuracy": (
        "Of the inputs whose latest operator label was given that day and that production answered "
        "(a served production answer), the share whose latest label equals production's latest served "
        "answer. Counted on the day of the latest label. Labels the queue asked for are the items the "
        "model was least sure of, so this figure understates accuracy on everyday production; it is "
        "comparable from day to day and between models, not with an evaluation on random items."
    ),
    "acceptance": (
        "Of the same labelled, production-served inputs, the share the operator accepted without "
        "correction: no label of the input ever differed from production's served answer. Unlike "
        "accuracy, an input corrected first and confirmed later counts as not accepted."
    ),
    "accuracy_audit": (
        "Accuracy as above, on the audit sample only: inputs the agent drew at random as it served them "
        "(store.audit_share), whatever production answered. The unbiased estimate of accuracy on "
        "everyday production; fewer labels, so wider uncertainty."
    ),
    "acceptance_audit": "Acceptance as above, on the audit sample only (unbiased, like accuracy_audit).",
    "agreement": (
        "Of the inputs created that day that both a candidate stage (shadow or pilot) and production "
        "answered, the share where the two latest answers carry the same label."
    ),
    "lead_time": (
        "Per model whose first production start lies in the window: hours from its arrival "
        "(models.installed_at) to that start (production_history.started_at). The median counts only "
        "models that passed a candidate stage first; a site's first model, installed straight into "
        "production, is listed but not counted."
    ),
    "operator_effort": (
        "Seconds per label: mean and median of labels.operator_seconds over the label rows that have it "
        "(relabels count: each is work). Labels per day: label rows in the window / running days."
    ),
    "latency": (
        "p50 and p95 of the latency callers saw for production answers (predictions.caller_latency_ms: "
        "from the agent taking the request to its answer being ready, queueing and batching included; "
        "answers from before store schema v10 count with their model time, latency_ms), per day and "
        "over the window (linear interpolation between the nearest ranks)."
    ),
    "drift": (
        "Drift checks (one per window of production answers) that ended in 'warning' or 'drift', with "
        "the feature and p-value that decided them; per day, the windows checked and their outcomes."
    ),
    "cost_benefit": (
        "An estimate from the plant's prices ([costs] in agent.toml), per day and in total; see "
        "'formulas'. Model errors are priced as the share of wrong answers the plant expects to escape "
        "its operators (escape_share) times the cost of an escaped defect; the error rate comes from "
        "queue labels, which are the hardest items, so it errs on the high side. Untimed labels count 0 s."
    ),
}
