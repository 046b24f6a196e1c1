"""Inputs, the predictions made for them, and the labels operators give them.

Functions here run inside a transaction the caller (``SiteStore``) opened; they never commit.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from edge_agent.split import HOLDOUT, TRAIN, SplitRule
from edge_agent.store import holdout
from edge_agent.store.chain import canonical_json
from edge_agent.store.records import (
    INPUT_KINDS,
    SPLITS,
    STAGES,
    InputRecord,
    LabelledInput,
    LabelRow,
    PredictionRecord,
    QueueItem,
    StoredInput,
)
from edge_agent.store.validate import decode_object, require_choice, require_existing
from genba.errors import UnknownItemError, UsageError

_INSERT_INPUT: Final = (
    "INSERT INTO inputs (created_at, kind, payload, payload_sha256, groups, source) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_PREDICTION: Final = (
    "INSERT INTO predictions (input_id, model_id, stage, label, score, margin, latency_ms, provider, "
    "served, created_at, caller_latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The production answer an operator saw for an input (newest, should a batch ever be replayed).
_SERVED_PREDICTION: Final = (
    "SELECT max(id) FROM predictions WHERE input_id = {input} AND stage = 'production' AND served = 1"
)


#: Whether the input ``{input}`` is in the audit sample (``edge_agent.store.audit_sample``).
IN_AUDIT_SAMPLE: Final = "EXISTS (SELECT 1 FROM audit_sample AS a WHERE a.input_id = {input})"


def check_served(inputs: Sequence[InputRecord], predictions: Sequence[Sequence[PredictionRecord]]) -> None:
    """Validate a micro-batch before taking the write lock."""
    if len(inputs) != len(predictions):
        raise UsageError(f"got {len(inputs)} inputs but predictions for {len(predictions)}")
    for record in inputs:
        require_choice(record.kind, INPUT_KINDS, "input kind")
    for answers in predictions:
        check_predictions(answers)


def check_predictions(predictions: Sequence[PredictionRecord]) -> None:
    for prediction in predictions:
        require_choice(prediction.stage, STAGES, "prediction stage")


def insert_served(
    conn: sqlite3.Connection,
    now: float,
    inputs: Sequence[InputRecord],
    predictions: Sequence[Sequence[PredictionRecord]],
) -> list[tuple[int, list[int]]]:
    """The hot path: one micro-batch of inputs and their answers, in the caller's one transaction."""
    require_existing(conn, "models", (p.model_id for answers in predictions for p in answers), "model")
    cursor = conn.cursor()
    written: list[tuple[int, list[int]]] = []
    for record, answers in zip(inputs, predictions, strict=True):
        payload = bytes(record.payload)
        cursor.execute(
            _INSERT_INPUT,
            (
                now,
                record.kind,
                payload,
                hashlib.sha256(payload).hexdigest(),
                canonical_json(dict(record.groups)),
                record.source,
            ),
        )
        input_id = _last_id(cursor)
        prediction_ids = []
        for prediction in answers:
            cursor.execute(_INSERT_PREDICTION, _prediction_values(input_id, prediction, now))
            prediction_ids.append(_last_id(cursor))
        written.append((input_id, prediction_ids))
    return written


def insert_predictions(
    conn: sqlite3.Connection, now: float, input_ids: Sequence[int], predictions: Sequence[PredictionRecord]
) -> list[int]:
    """Answers that arrive after the input was stored (shadow, evaluation)."""
    if len(input_ids) != len(predictions):
        raise UsageError(f"got {len(input_ids)} input ids but {len(predictions)} predictions")
    require_existing(conn, "inputs", input_ids, "input")
    require_existing(conn, "models", (p.model_id for p in predictions), "model")
    cursor = conn.cursor()
    ids = []
    for input_id, prediction in zip(input_ids, predictions, strict=True):
        cursor.execute(_INSERT_PREDICTION, _prediction_values(input_id, prediction, now))
        ids.append(_last_id(cursor))
    return ids


def fetch_input(conn: sqlite3.Connection, input_id: int) -> StoredInput:
    row = conn.execute(
        "SELECT id, kind, payload, groups, created_at FROM inputs WHERE id = ?", (input_id,)
    ).fetchone()
    if row is None:
        raise UnknownItemError(f"input {input_id} does not exist")
    return StoredInput(
        id=row[0], kind=row[1], payload=bytes(row[2]), groups=decode_object(row[3]), created_at=row[4]
    )


def fetch_inputs(conn: sqlite3.Connection, input_ids: Sequence[int]) -> list[StoredInput]:
    """The inputs of ``input_ids`` (a chunk: SQLite binds at most 999 values) that exist and were
    not pruned, in the order asked."""
    wanted = [int(i) for i in input_ids]
    rows = {
        row[0]: row
        for row in conn.execute(
            "SELECT id, kind, payload, groups, created_at FROM inputs "
            f"WHERE pruned_at IS NULL AND id IN ({','.join('?' * len(wanted))})",
            wanted,
        )
    }
    return [
        StoredInput(id=r[0], kind=r[1], payload=bytes(r[2]), groups=decode_object(r[3]), created_at=r[4])
        for r in (rows[i] for i in wanted if i in rows)
    ]


def served_prediction(conn: sqlite3.Connection, input_id: int) -> tuple[int, str | None] | None:
    row = conn.execute(
        f"SELECT id, label FROM predictions WHERE id = ({_SERVED_PREDICTION.format(input='?')})", (input_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def insert_label(
    conn: sqlite3.Connection,
    now: float,
    input_id: int,
    label: str,
    *,
    actor: str,
    split: str | SplitRule,
    operator_seconds: float | None,
    groups: Mapping[str, str] | None,
) -> LabelRow:
    """A correction is a label that differs from what production served for the input.

    ``split``: the site's :class:`SplitRule`, which decides by the input's content (the agent's
    only way), or a split already decided (fixtures, simulations). Either way the input's content
    key is recorded, so training can leave out duplicates of held-out content.
    """
    if isinstance(split, str):
        require_choice(split, SPLITS, "label split")
    row = conn.execute("SELECT groups FROM inputs WHERE id = ?", (input_id,)).fetchone()
    if row is None:
        raise UnknownItemError(f"input {input_id} does not exist")
    merged_groups = {**decode_object(row[0]), **dict(groups or {})}
    key = holdout.label_content_key(conn, input_id)
    # An input keeps the split (and held-out set) of its first label: a label training has seen must
    # never become a held-out one (or the reverse) because someone labelled the input again.
    first = conn.execute(
        "SELECT split, holdout_epoch FROM labels WHERE input_id = ? ORDER BY id LIMIT 1", (input_id,)
    ).fetchone()
    if first is not None:
        chosen, epoch = first
    else:
        # A pruned payload has no content left to split by: held out, so it can never train.
        chosen = split if isinstance(split, str) else (split.split_of(key) if key is not None else HOLDOUT)
        epoch = holdout.current_epoch(conn) if chosen == HOLDOUT else None
    served = served_prediction(conn, input_id)
    is_correction = served is not None and served[1] != label
    cursor = conn.execute(
        "INSERT INTO labels (input_id, label, operator_seconds, actor, groups, split, is_correction, "
        "created_at, holdout_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            input_id,
            label,
            operator_seconds,
            actor,
            canonical_json(merged_groups),
            chosen,
            int(is_correction),
            now,
            epoch,
        ),
    )
    return LabelRow(
        id=_last_id(cursor),
        input_id=input_id,
        label=label,
        split=chosen,
        is_correction=is_correction,
        operator_seconds=operator_seconds,
        created_at=now,
    )


# A train label whose content is also held out (any epoch, any input) is never read as a train label.
# (Inputs by content key first, then their labels: a lookup per train label, not a scan of held-out ones.)
_NO_HELD_OUT_TWIN: Final = (
    "NOT EXISTS (SELECT 1 FROM inputs AS twin WHERE twin.content_key = i.content_key AND EXISTS "
    "(SELECT 1 FROM labels AS h WHERE h.input_id = twin.id AND h.split = 'holdout'))"
)


def split_filter(conn: sqlite3.Connection, split: str, epoch: int | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE terms of one split: train labels without held-out twins; one epoch's held-out labels."""
    require_choice(split, SPLITS, "label split")
    if split == TRAIN:
        return f"l.split = 'train' AND {_NO_HELD_OUT_TWIN}", ()
    return "l.split = 'holdout' AND l.holdout_epoch = ?", (
        holdout.current_epoch(conn) if epoch is None else epoch,
    )


def labelled_inputs(
    conn: sqlite3.Connection, split: str, limit: int, epoch: int | None = None
) -> list[LabelledInput]:
    """Inputs whose latest label is in ``split``, newest label first; pruned payloads are left out.

    ``train``: never an input whose content is held out anywhere. ``holdout``: the labels of held-out
    set ``epoch`` (None: the current one, the set the gates judge on).
    """
    terms, values = split_filter(conn, split, epoch)
    rows = conn.execute(
        "SELECT i.id, i.kind, i.payload, l.label, l.groups FROM latest_labels AS l "
        "JOIN inputs AS i ON i.id = l.input_id "
        f"WHERE {terms} AND i.pruned_at IS NULL ORDER BY l.id DESC LIMIT ?",
        (*values, limit),
    ).fetchall()
    return [
        LabelledInput(input_id=r[0], kind=r[1], payload=bytes(r[2]), label=r[3], groups=decode_object(r[4]))
        for r in rows
    ]


def labelled_keys(
    conn: sqlite3.Connection,
    split: str,
    limit: int,
    epoch: int | None = None,
    *,
    audited_only: bool = False,
    since: float | None = None,
) -> list[tuple[int, str]]:
    """``(input_id, label)`` of what ``labelled_inputs`` returns, without reading any payload; of
    audit-sample inputs only (``audited_only``), of labels given at or after ``since`` only."""
    terms, values = split_filter(conn, split, epoch)
    audit = f"AND {IN_AUDIT_SAMPLE.format(input='i.id')} " if audited_only else ""
    rows = conn.execute(
        "SELECT i.id, l.label FROM latest_labels AS l JOIN inputs AS i ON i.id = l.input_id "
        f"WHERE {terms} AND i.pruned_at IS NULL {audit}AND (? IS NULL OR l.created_at >= ?) "
        "ORDER BY l.id DESC LIMIT ?",
        (*values, since, since, limit),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


#: The SELECT a queue item is read with, from ``inputs AS i`` and a FROM/JOIN the caller adds.
QUEUE_COLUMNS: Final = (
    "SELECT i.id, i.kind, i.payload, p.label, p.score, p.margin, i.created_at FROM {source} "
    f"LEFT JOIN predictions AS p ON p.id = ({_SERVED_PREDICTION.format(input='i.id')}) "
    "WHERE i.pruned_at IS NULL AND NOT EXISTS (SELECT 1 FROM labels AS l WHERE l.input_id = i.id) "
)


def queue_item(row: Sequence[Any], *, audit: bool = False, disagreement: bool = False) -> QueueItem:
    return QueueItem(
        row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6], audit=audit, disagreement=disagreement
    )


def uncertain_unlabelled(
    conn: sqlite3.Connection, limit: int, answered_between: tuple[int, int] | None = None
) -> list[QueueItem]:
    """The labelling queue: least sure production answers first, then newest; unanswered inputs last.

    ``answered_between``: only inputs whose served answer has a prediction id in that range
    (inclusive), e.g. a window drift was raised on.
    """
    first, last = answered_between or (None, None)
    rows = conn.execute(
        QUEUE_COLUMNS.format(source="inputs AS i") + "AND (? IS NULL OR p.id BETWEEN ? AND ?) "
        "ORDER BY p.margin IS NULL, p.margin, i.created_at DESC, i.id DESC LIMIT ?",
        (first, first, last, limit),
    ).fetchall()
    return [queue_item(r) for r in rows]


def _prediction_values(input_id: int, prediction: PredictionRecord, now: float) -> tuple[Any, ...]:
    p = prediction
    return (
        input_id,
        p.model_id,
        p.stage,
        p.label,
        p.score,
        p.margin,
        p.latency_ms,
        p.provider,
        int(p.served),
        now,
        p.caller_latency_ms,
    )


def _last_id(cursor: sqlite3.Cursor) -> int:
    row_id = cursor.lastrowid
    assert row_id is not None  # an INSERT into a rowid table always sets it
    return row_id


def unlabelled_payloads(conn: sqlite3.Connection, kind: str, limit: int) -> list[bytes]:
    """Distinct payloads of ``kind`` that no input carrying them was ever labelled with, newest first
    (pruned payloads left out)."""
    rows = conn.execute(
        "SELECT i.payload FROM inputs AS i WHERE i.kind = ? AND i.pruned_at IS NULL "
        "AND i.payload_sha256 NOT IN (SELECT j.payload_sha256 FROM inputs AS j JOIN labels AS l "
        "ON l.input_id = j.id) GROUP BY i.payload_sha256 ORDER BY max(i.id) DESC LIMIT ?",
        (kind, limit),
    ).fetchall()
    return [bytes(row[0]) for row in rows]


def labelled_between(conn: sqlite3.Connection, first: int, last: int) -> int:
    """Inputs with an operator label whose served answer has a prediction id in ``[first, last]``."""
    count: int = conn.execute(
        "SELECT count(DISTINCT p.input_id) FROM predictions AS p WHERE p.id BETWEEN ? AND ? "
        "AND p.stage = 'production' AND p.served = 1 "
        "AND EXISTS (SELECT 1 FROM labels AS l WHERE l.input_id = p.input_id)",
        (first, last),
    ).fetchone()[0]
    return count


def group_tags(conn: sqlite3.Connection, input_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Each input's tags, updated by the tags of its latest label (an operator may correct them)."""
    wanted = sorted({int(i) for i in input_ids})
    tags: dict[int, dict[str, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            "SELECT i.id, i.groups, l.groups FROM inputs AS i LEFT JOIN latest_labels AS l "
            f"ON l.input_id = i.id WHERE i.id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        for input_id, input_groups, label_groups in rows:
            tags[input_id] = {**decode_object(input_groups), **decode_object(label_groups or "{}")}
    return tags


def labels_with_served_answers(conn: sqlite3.Connection, since: float) -> list[tuple[int, str, str | None]]:
    """``(input_id, latest label, production's served answer)`` for labels given since ``since``."""
    rows = conn.execute(
        "SELECT l.input_id, l.label, p.label FROM latest_labels AS l "
        f"LEFT JOIN predictions AS p ON p.id = ({_SERVED_PREDICTION.format(input='l.input_id')}) "
        "WHERE l.created_at >= ? ORDER BY l.input_id",
        (since,),
    ).fetchall()
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]
