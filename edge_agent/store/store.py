"""``SiteStore``: the site's SQLite store (WAL) behind one small, thread-safe class.

Every write method is one transaction, durable when it returns. Readers in other processes
(training, reports) open ``SiteStore.read_only(path)`` and read through WAL while the agent
writes. The work is done by plain functions in the sibling modules; this class owns the
connection, the lock, the clock and the error translation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from edge_agent.split import DEFAULT_HOLDOUT_REUSE_LIMIT, SplitRule
from edge_agent.store import audit_sample, holdout, kpi, paired_sample, report_queries, rollout
from edge_agent.store import drift as drift_rows
from edge_agent.store import embeddings as embedding_rows
from edge_agent.store import inputs as input_rows
from edge_agent.store.chain import ChainMark, append_entry, read_entries, verify_entries
from edge_agent.store.connection import DEFAULT_DURABILITY, Database
from edge_agent.store.paired_sample import PairedAnswer, PairedBatch
from edge_agent.store.records import (
    ChainEntry,
    ChainReport,
    InputRecord,
    LabelledInput,
    LabelRow,
    ModelRow,
    PredictionRecord,
    QueueItem,
    Slots,
    StoredInput,
    Transition,
)
from edge_agent.store.retention import prune_inputs
from edge_agent.store.schema import SCHEMA_VERSION, apply_migrations, check_not_newer, schema_version
from edge_agent.store.steady_clock import SteadyClock, newest_stamp
from genba.errors import StoreError, UsageError
from genba.versions import ModelVersion

Clock = Callable[[], float]


_CHAIN_TABLES = {"audit": "audit_log", "egress": "egress_ledger"}


class SiteStore:
    """The site store. Use as a context manager, or call ``close()``.

    ``holdout_reuse_limit``: distinct candidates judged on one held-out set before the next
    set begins (``store.holdout_reuse_limit``; see ``edge_agent.split``). ``durability``: what an
    acknowledged write survives, ``power_cut`` or ``process_kill`` (``edge_agent.store.connection``).
    """

    def __init__(
        self,
        path: Path,
        clock: Clock = time.time,
        *,
        holdout_reuse_limit: int = DEFAULT_HOLDOUT_REUSE_LIMIT,
        durability: str = DEFAULT_DURABILITY,
        _read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self.holdout_reuse_limit = holdout_reuse_limit
        self._db = Database(self.path, read_only=_read_only, durability=durability)
        #: Per chain table: where it was last found intact, and the file's foreign-write count then.
        self._chain_marks: dict[str, tuple[int, ChainMark]] = {}
        #: Per chain table: the highest entry this store wrote or found intact; fewer entries later
        #: means the newest were cut off, which the chain alone cannot show.
        self._chain_heights: dict[str, int] = {}
        self._chain_lock = threading.Lock()
        try:
            with self._db.autocommit() as conn:
                if _read_only:
                    _require_current_schema(self.path, check_not_newer(conn))
                else:
                    apply_migrations(conn, self.path)
                self._clock = SteadyClock(clock, newest_stamp(conn))  # stamps never step back
            if not _read_only:
                self._backfill_content_keys()
        except BaseException:
            self._db.close()
            raise

    def _backfill_content_keys(self) -> None:
        """Labelled inputs from before v5 get their content keys; read first, so usually no write lock."""
        with self._db.read() as conn:
            missing = holdout.unkeyed_labelled_inputs(conn)
        if missing:
            with self._db.write() as conn:
                for input_id in missing:
                    holdout.label_content_key(conn, input_id)

    @classmethod
    def read_only(cls, path: Path, clock: Clock = time.time) -> SiteStore:
        """A reader for another process or thread; it reads through WAL and never blocks the writer."""
        return cls(path, clock, _read_only=True)

    def __enter__(self) -> SiteStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def clock_held_back_s(self) -> float:
        """How far the PC's clock is behind the newest time in the store (0.0 normally): stamps
        are held just after that time until the clock catches up (``steady_clock``)."""
        return self._clock.held_back_s if isinstance(self._clock, SteadyClock) else 0.0

    @property
    def schema_version(self) -> int:
        with self._db.read() as conn:
            return schema_version(conn)

    @property
    def durability(self) -> str:
        """What an acknowledged write survives: ``power_cut`` or ``process_kill``."""
        return self._db.durability

    def integrity_check(self) -> str:
        """SQLite's own check of the file: "ok", or the first problem it found."""
        with self._db.read() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    # Inputs, predictions, labels

    def record_served(
        self,
        inputs: Sequence[InputRecord],
        predictions: Sequence[Sequence[PredictionRecord]],
        audited: Sequence[bool] = (),
    ) -> list[tuple[int, list[int]]]:
        """One micro-batch in one transaction: per input, (input_id, ids of ``predictions[i]``);
        the inputs flagged in ``audited`` join the audit sample in the same transaction."""
        input_rows.check_served(inputs, predictions)
        with self._db.write() as conn:
            now = self._clock()
            written = input_rows.insert_served(conn, now, inputs, predictions)
            flags = audited or [False] * len(written)
            drawn = [input_id for (input_id, _), draw in zip(written, flags, strict=True) if draw]
            if drawn:
                audit_sample.draw(conn, now, drawn)
            return written

    def add_predictions(
        self,
        input_ids: Sequence[int],
        predictions: Sequence[PredictionRecord],
        paired: PairedBatch | None = None,
    ) -> list[int]:
        """Answers given after their input was stored (shadow, evaluation): one per input id; with
        ``paired``, the candidate's paired-sample rows of the same batch, in the same transaction."""
        input_rows.check_predictions(predictions)
        with self._db.write() as conn:
            ids = input_rows.insert_predictions(conn, self._clock(), input_ids, predictions)
            if paired is not None and paired.answers:
                paired_sample.record(conn, self._clock(), paired)
            return ids

    def get_input(self, input_id: int) -> StoredInput:
        with self._db.read() as conn:
            return input_rows.fetch_input(conn, input_id)

    def get_inputs(self, input_ids: Sequence[int]) -> list[StoredInput]:
        """Several inputs in one read, in the order asked; missing or pruned ones left out."""
        with self._db.read() as conn:
            return input_rows.fetch_inputs(conn, input_ids)

    def served_prediction(self, input_id: int) -> tuple[int, str | None] | None:
        """(prediction id, label) of the production answer served for the input, if there was one."""
        with self._db.read() as conn:
            return input_rows.served_prediction(conn, input_id)

    def add_label(
        self,
        input_id: int,
        label: str,
        *,
        actor: str,
        split: str | SplitRule,
        operator_seconds: float | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> LabelRow:
        """Record an operator's label; ``groups`` are merged over the input's own. ``split``: the
        site's rule, which decides by content, or a split decided elsewhere (fixtures, simulations)."""
        with self._db.write() as conn:
            return input_rows.insert_label(
                conn,
                self._clock(),
                input_id,
                label,
                actor=actor,
                split=split,
                operator_seconds=operator_seconds,
                groups=groups,
            )

    def labelled_inputs(
        self, split: str, limit: int = 10000, epoch: int | None = None
    ) -> list[LabelledInput]:
        """Inputs whose latest label is in ``split``, newest first (pruned payloads left out): train
        labels without held-out twins, or held-out set ``epoch`` (None: the current one)."""
        with self._db.read() as conn:
            return input_rows.labelled_inputs(conn, split, limit, epoch)

    def labelled_keys(
        self, split: str, limit: int = 10000, epoch: int | None = None
    ) -> list[tuple[int, str]]:
        """``(input_id, label)`` pairs of ``labelled_inputs``: cheap enough to ask every few seconds."""
        with self._db.read() as conn:
            return input_rows.labelled_keys(conn, split, limit, epoch)

    # The audit sample (edge_agent.store.audit_sample)

    def add_to_audit_sample(self, input_ids: Sequence[int]) -> None:
        with self._db.write() as conn:
            audit_sample.draw(conn, self._clock(), input_ids)

    def audit_queue(self, limit: int = 20) -> list[QueueItem]:
        """Audit-sample inputs waiting for a label, oldest drawn first."""
        with self._db.read() as conn:
            return audit_sample.unlabelled(conn, limit)

    def gate_labels(
        self, *, audited_only: bool, since: float | None = None, limit: int = 10000
    ) -> list[tuple[int, str]]:
        """The current held-out set's ``(input_id, label)``, newest first, that the gates judge on."""
        with self._db.read() as conn:
            return input_rows.labelled_keys(conn, "holdout", limit, audited_only=audited_only, since=since)

    # The paired sample (edge_agent.store.paired_sample)

    def record_paired(self, batch: PairedBatch) -> None:
        with self._db.write() as conn:
            paired_sample.record(conn, self._clock(), batch)

    def paired_sequence(
        self, candidate_id: int, production_id: int, stage: str, since: float | None = None
    ) -> list[PairedAnswer]:
        with self._db.read() as conn:
            return paired_sample.sequence(conn, candidate_id, production_id, stage, since)

    def disagreement_queue(self, candidate_id: int, limit: int = 20) -> list[QueueItem]:
        with self._db.read() as conn:
            return paired_sample.unlabelled(conn, candidate_id, limit)

    def audit_summary(self) -> dict[str, Any]:
        with self._db.read() as conn:
            return audit_sample.summary(conn)

    def holdout_status(self) -> dict[str, Any]:
        """The current held-out set: epoch, labels, and the candidates judged on it against the limit."""
        with self._db.read() as conn:
            return holdout.status(conn, self.holdout_reuse_limit)

    def uncertain_unlabelled(
        self, limit: int = 20, answered_between: tuple[int, int] | None = None
    ) -> list[QueueItem]:
        """The labelling queue: smallest production margin first, ties newest first."""
        with self._db.read() as conn:
            return input_rows.uncertain_unlabelled(conn, limit, answered_between)

    def unlabelled_payloads(self, kind: str, limit: int) -> list[bytes]:
        """Distinct payloads of ``kind`` never labelled, newest first: site training's unlabelled data."""
        with self._db.read() as conn:
            return input_rows.unlabelled_payloads(conn, kind, limit)

    def labelled_between(self, first_prediction: int, last_prediction: int) -> int:
        with self._db.read() as conn:
            return input_rows.labelled_between(conn, first_prediction, last_prediction)

    # Embeddings cached by site training (edge_agent.store.embeddings)

    def get_embeddings(self, model_key: str, input_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Cached float32 vectors by input id; inputs with none (or pruned) are left out."""
        with self._db.read() as conn:
            return embedding_rows.read_embeddings(conn, model_key, input_ids)

    def put_embeddings(self, model_key: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Cache vectors in one transaction; returns how many were written (pruned inputs are skipped)."""
        embedding_rows.check_vectors(model_key, vectors)
        with self._db.write() as conn:
            return embedding_rows.insert_embeddings(conn, self._clock(), model_key, vectors)

    def drop_pruned_embeddings(self) -> int:
        """Delete the cached vectors of inputs whose payload retention removed; returns how many."""
        with self._db.write() as conn:
            return embedding_rows.delete_pruned(conn)

    def embedding_count(self, model_key: str | None = None) -> int:
        with self._db.read() as conn:
            return embedding_rows.count_embeddings(conn, model_key)

    def group_tags(self, input_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        with self._db.read() as conn:
            return input_rows.group_tags(conn, input_ids)

    def labels_with_served_answers(self, since: float = 0.0) -> list[tuple[int, str, str | None]]:
        with self._db.read() as conn:
            return input_rows.labels_with_served_answers(conn, since)

    # Drift monitoring (edge_agent.store.drift)

    def add_drift_features(self, model_id: int, prediction_ids: Sequence[int], matrix: np.ndarray) -> None:
        if len(prediction_ids) != len(matrix):
            raise UsageError(f"{len(prediction_ids)} predictions but {len(matrix)} feature rows")
        with self._db.write() as conn:
            drift_rows.insert_features(conn, model_id, prediction_ids, matrix)

    def drift_features(self, model_id: int, after: int, limit: int) -> tuple[list[int], np.ndarray | None]:
        with self._db.read() as conn:
            return drift_rows.read_features(conn, model_id, after, limit)

    def drift_pending(self, model_id: int, after: int) -> int:
        with self._db.read() as conn:
            return drift_rows.count_features(conn, model_id, after)

    def drift_reference(self, model_id: int) -> dict[str, Any] | None:
        with self._db.read() as conn:
            return drift_rows.reference(conn, model_id)

    def record_drift_window(
        self, model_id: int, check: dict[str, Any], *, joins_reference: bool = False
    ) -> int:
        """One window's check and, while the model's reference is being built, the window joining it."""
        with self._db.write() as conn:
            if joins_reference:
                drift_rows.extend_reference(
                    conn, model_id, check["first_prediction"], check["last_prediction"], check["items"],
                    self._clock(),
                )  # fmt: skip
            return drift_rows.insert_check(conn, model_id, check, self._clock())

    def drift_groups(self, prediction_ids: Sequence[int]) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return drift_rows.read_groups(conn, prediction_ids)

    def rebaseline_drift(self, model_id: int, actor: str, details: Mapping[str, Any]) -> bool:
        """Forget the model's drift reference (audited, one transaction): the next windows build a new one."""
        with self._db.write() as conn:
            dropped = drift_rows.drop_reference(conn, model_id)
            fields = {**details, "model_id": model_id, "had_reference": dropped}
            entry = {"actor": actor, "event": "drift_rebaseline", "details": fields}
            append_entry(conn, "audit_log", self._clock(), entry)
            return dropped

    def drift_last_checked(self, model_id: int) -> int:
        with self._db.read() as conn:
            return drift_rows.last_checked(conn, model_id)

    def drift_checks(self, model_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return drift_rows.checks(conn, model_id, limit)

    # Models, slots and rollout decisions

    def add_model(
        self,
        *,
        name: str,
        version: ModelVersion | int,
        manifest_sha256: str,
        path: str,
        signer_key_id: str | None,
        lineage: Mapping[str, Any],
        manifest: Mapping[str, Any],
        installed_by: str,
    ) -> ModelRow:
        fields = {
            "name": name,
            "version": version,
            "manifest_sha256": manifest_sha256,
            "path": path,
            "signer_key_id": signer_key_id,
            "lineage": lineage,
            "manifest": manifest,
            "installed_by": installed_by,
        }
        with self._db.write() as conn:
            return rollout.insert_model(conn, self._clock(), fields)

    def get_model(self, model_id: int) -> ModelRow:
        with self._db.read() as conn:
            return rollout.fetch_model(conn, model_id)

    def find_model(self, name: str | None, version: ModelVersion | int) -> ModelRow | None:
        """That version of that model (any name when ``name`` is None); the newest install wins."""
        with self._db.read() as conn:
            return rollout.find_model(conn, name, version)

    def list_models(self) -> list[ModelRow]:
        with self._db.read() as conn:
            return rollout.list_models(conn)

    def slots(self) -> Slots:
        with self._db.read() as conn:
            return rollout.read_slots(conn)

    def apply_transition(self, t: Transition) -> None:
        """Slots, production history, the decision and its audit entry, all or nothing."""
        rollout.check_transition(t)
        with self._db.write() as conn:
            now = self._clock()
            decision = rollout.apply_transition(conn, now, t)
            holdout.note_decision(conn, now, decision, t.gates, self.holdout_reuse_limit)

    def record_decision(
        self,
        model_id: int,
        from_stage: str | None,
        to_stage: str | None,
        actor: str,
        outcome: str,
        gates: Mapping[str, Any] | None,
    ) -> int:
        """A decision that changes no slot (a gate saying 'hold'); returns its id."""
        with self._db.write() as conn:
            now = self._clock()
            decision = rollout.insert_decision(
                conn, now, model_id, from_stage, to_stage, actor, outcome, gates
            )
            holdout.note_decision(conn, now, decision, gates, self.holdout_reuse_limit)
            return decision

    def decisions(self, model_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; all models when ``model_id`` is None."""
        with self._db.read() as conn:
            return rollout.read_decisions(conn, model_id, limit)

    def rollback_target(self) -> int | None:
        """The model a rollback returns to: the one most recently replaced and not yet restored."""
        with self._db.read() as conn:
            return rollout.rollback_target(conn)

    def production_history(self) -> list[dict[str, Any]]:
        """Newest first: id, model_id, name, version, started_at, ended_at, end_reason."""
        with self._db.read() as conn:
            return rollout.read_history(conn)

    # Figures for the gates and the reports

    def stage_count(self, model_id: int, stage: str, since: float) -> int:
        with self._db.read() as conn:
            return kpi.stage_count(conn, model_id, stage, since)

    def agreement(self, candidate_id: int, production_id: int, since: float) -> tuple[int, int]:
        """(compared, agreed) over inputs since ``since`` that both models answered."""
        with self._db.read() as conn:
            return kpi.agreement(conn, candidate_id, production_id, since)

    def latencies(
        self, model_id: int, since: float, stage: str | None = None, limit: int = 5000
    ) -> list[float]:
        with self._db.read() as conn:
            return kpi.latencies(conn, model_id, since, stage, limit)

    def kpi_summary(self, since: float | None = None) -> dict[str, Any]:
        with self._db.read() as conn:
            return kpi.summary(conn, since)

    def refresh_kpi_daily(self, day: str | None = None) -> int:
        """Recompute one UTC day (today by the clock when None); returns the rows written."""
        with self._db.write() as conn:
            return kpi.refresh_daily(conn, day if day is not None else kpi.utc_day(self._clock()))

    def kpi_daily(self, days: int = 30) -> list[dict[str, Any]]:
        """Rows of the last ``days`` UTC days, newest day first."""
        with self._db.read() as conn:
            return kpi.read_daily(conn, kpi.first_day(self._clock(), days))

    def report_figures(self, days: Sequence[str]) -> dict[str, Any]:
        """The KPI report's raw figures for consecutive UTC ``days`` (oldest first), one snapshot."""
        with self._db.read() as conn:
            return report_queries.figures(conn, days)

    # Hash-chained logs

    def append_audit(self, event: str, actor: str, details: Mapping[str, Any]) -> ChainEntry:
        with self._db.write() as conn:
            fields = {"actor": actor, "event": event, "details": dict(details)}
            entry = append_entry(conn, "audit_log", self._clock(), fields)
        return self._wrote("audit_log", entry)

    def audit(self, limit: int = 100, offset: int = 0, event: str | None = None) -> list[ChainEntry]:
        """Newest first; ``event`` keeps only entries of that event."""
        with self._db.read() as conn:
            return read_entries(conn, "audit_log", limit, offset, event)

    def append_egress(
        self,
        *,
        destination: str,
        kind: str,
        payload_bytes: int,
        content_sha256: str,
        round: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> ChainEntry:
        """Record one message that left the site: where to, what kind, how many bytes, and the SHA-256
        of exactly what it carried (``genba.protocol.content_sha256``)."""
        if len(content_sha256) != 64 or content_sha256.strip("0123456789abcdef"):
            raise UsageError(f"content_sha256 must be 64 lowercase hex digits, not {content_sha256[:70]!r}")
        fields = {
            "destination": destination,
            "kind": kind,
            "payload_bytes": int(payload_bytes),
            "round": round,
            "content_sha256": content_sha256,
            "details": dict(details or {}),
        }
        with self._db.write() as conn:
            entry = append_entry(conn, "egress_ledger", self._clock(), fields)
        return self._wrote("egress_ledger", entry)

    def egress(self, limit: int = 100, offset: int = 0) -> list[ChainEntry]:
        """Newest first."""
        with self._db.read() as conn:
            return read_entries(conn, "egress_ledger", limit, offset)

    def egress_count(self, kind: str) -> tuple[int, ChainEntry | None]:
        """How many messages of ``kind`` left the site, and the latest of them."""
        with self._db.read() as conn:
            count = int(
                conn.execute("SELECT count(*) FROM egress_ledger WHERE kind = ?", (kind,)).fetchone()[0]
            )
            latest = read_entries(conn, "egress_ledger", 1, 0, kind=kind)
        return count, (latest[0] if latest else None)

    def egress_totals(self) -> dict[str, int]:
        """Bytes sent, by kind."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT kind, sum(payload_bytes) FROM egress_ledger GROUP BY kind ORDER BY kind"
            )
            return {kind: int(total) for kind, total in rows}

    def egress_payload(self, run: int | str, round: int | None) -> int:
        """Payload bytes the ClientApp sent for one round of one run (``details.run``, the run id as
        text, written since v4: Flower's run ids are unsigned 64-bit, beyond SQLite's integers)."""
        with self._db.read() as conn:
            total = conn.execute(
                "SELECT sum(payload_bytes) FROM egress_ledger"
                " WHERE round IS ? AND json_extract(details, '$.run') = ?",
                (round, str(run)),
            ).fetchone()[0]
        return int(total or 0)

    def verify_chain(self, name: str, *, full: bool = False) -> ChainReport:
        """Verify one chain (``audit`` or ``egress``): the entries added since this store last found
        it intact, or from its first entry when ``full``, on first use, after a broken result, and
        whenever anything but this store's own writer has changed the file since (another process,
        someone editing it by hand), which could have reached entries already verified. A chain
        shorter than one this store wrote or verified is broken at its first missing entry: its
        newest entries were cut off (this store's memory only: a restarted agent cannot tell)."""
        table = _CHAIN_TABLES[name]
        seen = self._db.foreign_writes()  # read before the snapshot: a later change forces a full check
        with self._chain_lock:  # both read before the snapshot, so it holds everything they count
            known, height = self._chain_marks.get(table), self._chain_heights.get(table, 0)
        after = known[1] if known is not None and known[0] == seen and not full else None
        with self._db.read() as conn:
            report, mark = verify_entries(conn, table, after)
        with self._chain_lock:
            if mark is not None:
                self._chain_marks[table] = (seen, mark)
            else:
                self._chain_marks.pop(table, None)
            if report.ok and report.entries < height:
                return ChainReport(ok=False, entries=report.entries, first_bad_seq=report.entries + 1)
            if report.ok:
                self._chain_heights[table] = max(self._chain_heights.get(table, 0), report.entries)
        return report

    def _wrote(self, table: str, entry: ChainEntry) -> ChainEntry:
        with self._chain_lock:
            self._chain_heights[table] = max(self._chain_heights.get(table, 0), entry.seq)
        return entry

    def verify_chains(self, *, full: bool = False) -> dict[str, ChainReport]:
        return {name: self.verify_chain(name, full=full) for name in _CHAIN_TABLES}

    # Retention

    def prune(self, *, keep_days: float, keep_labelled: bool = True) -> dict[str, int]:
        """Blank payloads older than ``keep_days``; see ``edge_agent.store.retention``."""
        with self._db.write() as conn:
            counts = prune_inputs(conn, self._clock(), keep_days=keep_days, keep_labelled=keep_labelled)
        if counts["pruned"]:
            self._db.checkpoint()  # old page images in the WAL still hold the text until it is emptied
        return counts


def _require_current_schema(path: Path, found: int) -> None:
    if found < SCHEMA_VERSION:
        raise StoreError(
            f"site store {path} has schema v{found}, older than this Genba (v{SCHEMA_VERSION}); "
            "start the agent once to migrate it"
        )
