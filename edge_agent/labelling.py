"""The labelling queue: what to ask the operators about first."""

from __future__ import annotations

from typing import Any

from edge_agent.library import LoadedModel
from edge_agent.store import QueueItem, SiteStore

#: A window of answers (first and last prediction id) and how many labels are still wanted from it.
Focus = tuple[tuple[int, int], int]


def labelling_queue(
    store: SiteStore,
    production: LoadedModel | None,
    limit: int,
    focus: Focus | None = None,
    candidate_id: int | None = None,
) -> list[QueueItem]:
    """What to ask the operators about, in order: while a candidate (``candidate_id``) is judged,
    the inputs drawn where it and production disagree (marked ``disagreement``, oldest first: the
    accuracy gate reads them in order, ``edge_agent.store.paired_sample``); with a ``focus`` (a
    window drift was raised on), the labels still wanted from that window; then the audit sample's
    unlabelled items (marked ``audit``: drawn at random, whatever production answered, the KPI
    report's unbiased evidence); then the least certain. A report is asked for once, whichever
    list has it.

    The store ranks by the margin production had when it answered; a few times more than asked
    are re-embedded by production's backbone so the queue does not ask for the same report twice
    in other words (``edge_agent.selection``).
    """
    judging = store.disagreement_queue(candidate_id, limit) if candidate_id is not None else []
    drifted = _ranked(store, production, min(limit, focus[1]), focus[0]) if focus else []
    audit = store.audit_queue(limit)
    first = _distinct([*judging, *drifted, *audit])
    if len(first) >= limit:  # no need to rank (and run production over) the least certain
        return first[:limit]
    return _distinct([*first, *_ranked(store, production, limit + len(first))])[:limit]


def _ranked(
    store: SiteStore, production: LoadedModel | None, limit: int, window: tuple[int, int] | None = None
) -> list[QueueItem]:
    if limit <= 0:
        return []
    pool = _distinct(store.uncertain_unlabelled(limit * 4, window))
    if production is None or len(pool) <= limit:
        return pool[:limit]
    from edge_agent.answers import decode_payload
    from edge_agent.selection import select_for_labelling

    values = [decode_payload(item.kind, item.payload) for item in pool]
    probabilities, embedding, _ = production.model.predict_arrays(values)
    if probabilities is None or embedding is None:
        return pool[:limit]
    picked = select_for_labelling(probabilities, embedding, limit)
    # When what is left is all near-duplicates, fill up in margin order: an operator
    # asked for `limit` items, and a short queue would look like there is nothing to do.
    picked += [i for i in range(len(pool)) if i not in picked][: limit - len(picked)]
    return [pool[i] for i in picked]


def queue_entry(item: QueueItem) -> dict[str, Any]:
    """What the API and the CLI show of a queued item: its text, never image bytes."""
    return {
        "input_id": item.input_id,
        "kind": item.kind,
        "text": item.payload.decode("utf-8") if item.kind == "text" else None,
        "label": item.label,
        "score": item.score,
        "margin": item.margin,
        "created_at": item.created_at,
        "audit": item.audit,
        "disagreement": item.disagreement,
    }


def _distinct(items: list[QueueItem]) -> list[QueueItem]:
    """The first of each identical report: asking for it twice yields one label's worth."""
    seen: set[bytes] = set()
    kept = []
    for item in items:
        if item.payload not in seen:
            seen.add(item.payload)
            kept.append(item)
    return kept
