"""The paired sample: what both models answered on held-out inputs while a candidate is judged.

While a candidate answers in shadow or pilot, the agent records one row for every held-out input
(by content, ``edge_agent.split``) that both the candidate and production answered: both answers,
and whether the input was drawn for labelling. Only inputs the two answered differently are
drawn, each with the chance ``gates.disagreement_share``; where they agree, a label could not
tell them apart. The rows, in the order the inputs were served, are the accuracy gate's sequence
(``edge_agent.evidence.sampled_evidence``); the queue offers the drawn inputs first, oldest first,
marked ``disagreement``.

Functions here run inside a transaction or read the caller (``SiteStore``) opened.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from edge_agent.split import content_key
from edge_agent.store.inputs import QUEUE_COLUMNS, queue_item
from edge_agent.store.records import QueueItem


@dataclass(frozen=True)
class PairedAnswer:
    """Both models' answers on one held-out input, and whether it was drawn for a label."""

    input_id: int
    candidate: str
    production: str
    drawn: bool
    label: str | None = None  # the operator's latest label, once there is one (reads only)
    lost: bool = False  # drawn, but its payload was pruned before anyone labelled it (reads only)

    @property
    def outcome(self) -> int | None:
        """``[candidate right] - [production right]`` for a drawn, labelled input; None otherwise."""
        if not self.drawn or (self.label is None and not self.lost):
            return None
        if self.lost:
            return -1  # it can never be labelled: it counts as production's, so withholding never helps
        return int(self.candidate == self.label) - int(self.production == self.label)


@dataclass(frozen=True)
class PairedBatch:
    """One batch's rows of a candidate's paired sample against ``production_id`` in ``stage``."""

    candidate_id: int
    production_id: int
    stage: str
    answers: tuple[PairedAnswer, ...]


def record(conn: sqlite3.Connection, now: float, batch: PairedBatch) -> None:
    candidate_id, production_id, stage = batch.candidate_id, batch.production_id, batch.stage
    conn.executemany(
        "INSERT INTO paired_sample (model_id, input_id, production_id, stage, candidate_label, "
        "production_label, drawn, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (model_id, input_id) DO NOTHING",  # an input joins once; a bad row still fails
        [
            (candidate_id, a.input_id, production_id, stage, a.candidate, a.production, int(a.drawn), now)
            for a in batch.answers
        ],
    )


def sequence(
    conn: sqlite3.Connection, candidate_id: int, production_id: int, stage: str, since: float | None
) -> list[PairedAnswer]:
    """The candidate's rows against ``production`` in ``stage`` (recorded at or after ``since``), in
    the order the inputs were served, with the latest label of each drawn input.

    A drawn input pruned by retention before it was labelled is ``lost``: the sequence goes on past
    it and the gate counts it as production's answer (:attr:`PairedAnswer.outcome`), so leaving a
    draw unlabelled until it is pruned can never help a candidate."""
    rows = conn.execute(
        "SELECT s.input_id, s.candidate_label, s.production_label, s.drawn, l.label, i.pruned_at "
        "FROM paired_sample AS s JOIN inputs AS i ON i.id = s.input_id "
        "LEFT JOIN latest_labels AS l ON l.input_id = s.input_id AND s.drawn "
        "WHERE s.model_id = ? AND s.production_id = ? AND s.stage = ? AND (? IS NULL OR s.created_at >= ?) "
        "ORDER BY s.input_id",
        (candidate_id, production_id, stage, since, since),
    ).fetchall()
    answers = [PairedAnswer(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), r[4]) for r in rows]
    for index, (answer, row) in enumerate(zip(answers, rows, strict=True)):
        if answer.drawn and answer.label is None:
            if row[5] is not None:
                answers[index] = replace(answer, lost=True)
                continue
            twin = _twin_label(conn, answer.input_id)  # the queue asks for one of identical reports once
            if twin is None:
                break  # the gate reads the sequence up to here; later rows wait for this label
            answers[index] = replace(answer, label=twin)
    return answers


def _twin_label(conn: sqlite3.Connection, input_id: int) -> str | None:
    """The latest label of another input with the same content (the same report, told once)."""
    row = conn.execute("SELECT kind, payload FROM inputs WHERE id = ?", (input_id,)).fetchone()
    if row is None:
        return None
    found = conn.execute(
        "SELECT l.label FROM inputs AS twin JOIN latest_labels AS l ON l.input_id = twin.id "
        "WHERE twin.content_key = ? ORDER BY l.id DESC LIMIT 1",
        (content_key(row[0], bytes(row[1])),),
    ).fetchone()
    return None if found is None else str(found[0])


def unlabelled(conn: sqlite3.Connection, candidate_id: int, limit: int) -> list[QueueItem]:
    """The candidate's drawn inputs no one labelled yet (payload kept), oldest served first."""
    source = "paired_sample AS s JOIN inputs AS i ON i.id = s.input_id AND s.drawn AND s.model_id = ?"
    rows = conn.execute(
        QUEUE_COLUMNS.format(source=source) + "ORDER BY s.input_id LIMIT ?", (candidate_id, limit)
    ).fetchall()
    return [queue_item(r, disagreement=True) for r in rows]
