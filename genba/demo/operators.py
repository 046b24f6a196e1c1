"""A shop floor in fast motion: each site's report stream through its agent's API, and its operators.

The stream is the site's synthetic reports (its own words, products and class mix), sent as the
line's systems would send them, tagged with line and shift. The simulated operators work the
labelling queue as people would: they take what the queue asks for and answer with the report's
true label, until each class has a few labels (the queue shows the least certain answers first).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from export.datasets.shopfloor import Report

#: Reports per predict call: a line's system sends a few at a time.
BATCH = 32
#: Queue entries asked for per round trip (each is ranked at the site with the production model).
QUEUE_PAGE = 60


def serve(client: Any, reports: Sequence[Report], advance: Callable[[int], Any] | None = None) -> list[int]:
    """Send the reports for prediction; returns the input ids the agent stored them under."""
    ids: list[int] = []
    for start in range(0, len(reports), BATCH):
        chunk = reports[start : start + BATCH]
        for report in chunk:
            _, line, shift = report.group.split("/")
            ids.append(client.predict(report.text, groups={"line": line, "shift": shift}).input_id)
        if advance is not None:
            advance(len(chunk))
    return ids


def label_from_queue(
    client: Any, truth: dict[str, str], labels: Sequence[str], per_class: int, seed: int
) -> dict[str, int]:
    """Label what the queue asks for, in its order, with the true label, until every class has
    ``per_class`` labels or twice that many per class were given in all (rare classes stay rare).
    Returns the labels given per class; seconds per label are drawn as a person's would be."""
    rng = random.Random(seed)
    given = dict.fromkeys(labels, 0)
    budget = 2 * per_class * len(labels)
    while sum(given.values()) < budget and not all(n >= per_class for n in given.values()):
        page = client.queue(limit=QUEUE_PAGE)
        if not page:
            break
        labelled_before = sum(given.values())
        for item in page:
            label = truth.get(item.text or "")
            if label is None:
                continue
            client.label(item.input_id, label, operator_seconds=round(rng.uniform(2.0, 7.0), 1))
            given[label] = given.get(label, 0) + 1
            if sum(given.values()) >= budget or all(n >= per_class for n in given.values()):
                break
        if sum(given.values()) == labelled_before:
            break  # nothing on the page the operators can judge
    return given


def label_audit_sample(client: Any, truth: dict[str, str], seed: int) -> int:
    """Label the audit-sample items the queue offers (it offers them first), as operators keep doing
    while a candidate is judged; returns how many were labelled."""
    rng = random.Random(seed)
    given = 0
    for item in client.queue(limit=QUEUE_PAGE):
        label = truth.get(item.text or "")
        if not item.audit or label is None:
            continue
        client.label(item.input_id, label, operator_seconds=round(rng.uniform(2.0, 7.0), 1))
        given += 1
    return given
