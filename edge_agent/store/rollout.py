"""Installed models, the two slots, production history and stage decisions.

Functions here run inside a transaction the caller (``SiteStore``) opened; they never commit.
Production history is a stack: promoting ends the current row as 'replaced'; rolling back ends
it as 'rolled_back' and marks the row it returns to as 'restored', so the next rollback goes one
step further back, and never forth again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, Final

from edge_agent.store.chain import append_entry, canonical_json
from edge_agent.store.records import (
    CANDIDATE_STAGES,
    KEEP,
    OUTCOMES,
    PRODUCTION_CHANGES,
    ModelRow,
    SlotRow,
    Slots,
    Transition,
)
from edge_agent.store.validate import decode_object, require_choice, require_existing
from genba.errors import DuplicateItemError, UnknownItemError, UsageError
from genba.versions import ModelVersion

_MODEL_COLUMNS: Final = (
    "id, name, version, revision, manifest_sha256, path, signer_key_id, lineage, manifest, installed_at, "
    "installed_by"
)
_END_REASONS: Final = {"promote": "replaced", "rollback": "rolled_back"}


def insert_model(conn: sqlite3.Connection, now: float, fields: Mapping[str, Any]) -> ModelRow:
    """Add one installed model; ``fields`` are the keyword arguments of ``SiteStore.add_model``."""
    name, version = fields["name"], as_version(fields["version"])
    try:
        cursor = conn.execute(
            "INSERT INTO models (name, version, revision, manifest_sha256, path, signer_key_id, lineage, "
            "manifest, installed_at, installed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                version.release,
                version.revision,
                fields["manifest_sha256"],
                fields["path"],
                fields["signer_key_id"],
                canonical_json(dict(fields["lineage"])),
                canonical_json(dict(fields["manifest"])),
                now,
                fields["installed_by"],
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "unique" not in str(exc).lower():
            raise
        raise DuplicateItemError(f"model {name} v{version} is already installed") from exc
    assert cursor.lastrowid is not None
    return fetch_model(conn, cursor.lastrowid)


def as_version(version: ModelVersion | int) -> ModelVersion:
    """A plain number is IT's release."""
    return version if isinstance(version, ModelVersion) else ModelVersion(int(version))


def fetch_model(conn: sqlite3.Connection, model_id: int) -> ModelRow:
    row = conn.execute(f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        raise UnknownItemError(f"model {model_id} does not exist")
    return _model(row)


def find_model(conn: sqlite3.Connection, name: str | None, version: ModelVersion | int) -> ModelRow | None:
    """The newest install of that version; of that name too unless ``name`` is None."""
    version = as_version(version)
    row = conn.execute(
        f"SELECT {_MODEL_COLUMNS} FROM models WHERE version = ? AND revision = ? AND (? IS NULL OR name = ?) "
        "ORDER BY installed_at DESC, id DESC LIMIT 1",
        (version.release, version.revision, name, name),
    ).fetchone()
    return _model(row) if row else None


def list_models(conn: sqlite3.Connection) -> list[ModelRow]:
    return [_model(row) for row in conn.execute(f"SELECT {_MODEL_COLUMNS} FROM models ORDER BY id")]


def read_slots(conn: sqlite3.Connection) -> Slots:
    found = {
        row[0]: SlotRow(slot=row[0], model_id=row[1], stage=row[2], since=row[3])
        for row in conn.execute("SELECT slot, model_id, stage, since FROM slots")
    }
    return Slots(production=found.get("production"), candidate=found.get("candidate"))


def check_transition(t: Transition) -> None:
    """Everything about a transition that can be checked without the database."""
    require_choice(t.outcome, OUTCOMES, "decision outcome")
    require_choice(t.production_change, PRODUCTION_CHANGES, "production change")
    if t.production is KEEP and t.production_change != "none":
        raise UsageError(f"production change {t.production_change!r} needs a new production model")
    if t.production is not KEEP and (not isinstance(t.production, int) or isinstance(t.production, bool)):
        raise UsageError("the production slot takes a model id; it cannot be emptied")
    if t.candidate is not KEEP and t.candidate is not None:
        if not (isinstance(t.candidate, tuple) and len(t.candidate) == 2 and isinstance(t.candidate[0], int)):
            raise UsageError("the candidate slot takes (model_id, stage), None or KEEP")
        require_choice(t.candidate[1], CANDIDATE_STAGES, "candidate stage")


def apply_transition(conn: sqlite3.Connection, now: float, t: Transition) -> int:
    """Slots, history, the decision and its audit entry: all in the caller's one transaction.

    Returns the decision's id."""
    check_transition(t)
    named = [t.model_id]
    if isinstance(t.production, int):
        named.append(t.production)
    if isinstance(t.candidate, tuple):
        named.append(t.candidate[0])
    require_existing(conn, "models", named, "model")
    changes: dict[str, Any] = {}
    if isinstance(t.production, int):
        _move_production(conn, now, t.production, t.production_change)
        changes.update(production=t.production, production_change=t.production_change)
    if t.candidate is not KEEP:
        _set_candidate(conn, now, t.candidate if isinstance(t.candidate, tuple) else None)
        changes["candidate"] = list(t.candidate) if isinstance(t.candidate, tuple) else None
    _refuse_same_model_in_both_slots(conn)
    gates = dict(t.gates) if t.gates is not None else None
    decision = insert_decision(conn, now, t.model_id, t.from_stage, t.to_stage, t.actor, t.outcome, gates)
    details = {
        **t.details,
        **changes,
        "model_id": t.model_id,
        "from_stage": t.from_stage,
        "to_stage": t.to_stage,
        "outcome": t.outcome,
        "gates": gates,
    }
    append_entry(conn, "audit_log", now, {"actor": t.actor, "event": t.event, "details": details})
    return decision


def insert_decision(
    conn: sqlite3.Connection,
    now: float,
    model_id: int,
    from_stage: str | None,
    to_stage: str | None,
    actor: str,
    outcome: str,
    gates: Mapping[str, Any] | None,
) -> int:
    require_choice(outcome, OUTCOMES, "decision outcome")
    require_existing(conn, "models", [model_id], "model")
    cursor = conn.execute(
        "INSERT INTO stage_decisions (model_id, from_stage, to_stage, actor, outcome, gates, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            model_id,
            from_stage,
            to_stage,
            actor,
            outcome,
            canonical_json(dict(gates)) if gates is not None else None,
            now,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def read_decisions(conn: sqlite3.Connection, model_id: int | None, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, model_id, from_stage, to_stage, actor, outcome, gates, created_at FROM stage_decisions "
        "WHERE ? IS NULL OR model_id = ? ORDER BY id DESC LIMIT ?",
        (model_id, model_id, limit),
    ).fetchall()
    keys = ("id", "model_id", "from_stage", "to_stage", "actor", "outcome", "gates", "created_at")
    decisions = [dict(zip(keys, row, strict=True)) for row in rows]
    for decision in decisions:
        decision["gates"] = json.loads(decision["gates"]) if decision["gates"] is not None else None
    return decisions


def rollback_target(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(
        "SELECT model_id FROM production_history WHERE end_reason = 'replaced' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def read_history(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Newest first, with each model's name and version for display."""
    rows = conn.execute(
        "SELECT h.id, h.model_id, m.name, h.started_at, h.ended_at, h.end_reason, m.version, m.revision "
        "FROM production_history AS h JOIN models AS m ON m.id = h.model_id ORDER BY h.id DESC"
    ).fetchall()
    keys = ("id", "model_id", "name", "started_at", "ended_at", "end_reason")
    return [
        {**dict(zip(keys, row[:6], strict=True)), **ModelVersion(row[6], row[7]).json_fields()}
        for row in rows
    ]


def _move_production(conn: sqlite3.Connection, now: float, model_id: int, change: str) -> None:
    current = conn.execute(
        "SELECT id FROM production_history WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if current is not None:
        if change == "none":
            raise UsageError("replacing the production model needs production change 'promote' or 'rollback'")
        conn.execute(
            "UPDATE production_history SET ended_at = ?, end_reason = ? WHERE id = ?",
            (now, _END_REASONS[change], current[0]),
        )
    if change == "rollback":
        conn.execute(
            "UPDATE production_history SET end_reason = 'restored' WHERE id = (SELECT id FROM "
            "production_history WHERE model_id = ? AND end_reason = 'replaced' ORDER BY id DESC LIMIT 1)",
            (model_id,),
        )
    conn.execute("INSERT INTO production_history (model_id, started_at) VALUES (?, ?)", (model_id, now))
    _put_slot(conn, "production", model_id, "production", now)


def _set_candidate(conn: sqlite3.Connection, now: float, candidate: tuple[int, str] | None) -> None:
    if candidate is None:
        conn.execute("DELETE FROM slots WHERE slot = 'candidate'")
    else:
        _put_slot(conn, "candidate", candidate[0], candidate[1], now)


def _put_slot(conn: sqlite3.Connection, slot: str, model_id: int, stage: str, now: float) -> None:
    conn.execute(
        "INSERT INTO slots (slot, model_id, stage, since) VALUES (?, ?, ?, ?) ON CONFLICT (slot) DO UPDATE "
        "SET model_id = excluded.model_id, stage = excluded.stage, since = excluded.since",
        (slot, model_id, stage, now),
    )


def _refuse_same_model_in_both_slots(conn: sqlite3.Connection) -> None:
    slots = read_slots(conn)
    if slots.production and slots.candidate and slots.production.model_id == slots.candidate.model_id:
        raise UsageError(
            f"model {slots.production.model_id} cannot be both production and candidate; "
            "empty the candidate slot when promoting"
        )


def _model(row: tuple[Any, ...]) -> ModelRow:
    return ModelRow(
        id=row[0],
        name=row[1],
        version=ModelVersion(row[2], row[3]),
        manifest_sha256=row[4],
        path=row[5],
        signer_key_id=row[6],
        lineage=decode_object(row[7]),
        manifest=decode_object(row[8]),
        installed_at=row[9],
        installed_by=row[10],
    )
