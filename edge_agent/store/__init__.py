"""The site store: inputs, predictions, labels, models, rollout state, KPIs and the hash-chained
audit log and egress ledger, in one SQLite file in WAL mode."""

from __future__ import annotations

from edge_agent.store.chain import GENESIS_HASH, canonical_json, entry_hash
from edge_agent.store.paired_sample import PairedAnswer, PairedBatch
from edge_agent.store.records import (
    KEEP,
    ChainEntry,
    ChainReport,
    InputRecord,
    LabelledInput,
    LabelRow,
    ModelRow,
    PredictionRecord,
    QueueItem,
    SlotRow,
    Slots,
    StoredInput,
    Transition,
)
from edge_agent.store.schema import MIGRATIONS, SCHEMA_VERSION
from edge_agent.store.store import Clock, SiteStore

__all__ = [
    "GENESIS_HASH",
    "KEEP",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ChainEntry",
    "ChainReport",
    "Clock",
    "InputRecord",
    "LabelRow",
    "PairedAnswer",
    "PairedBatch",
    "LabelledInput",
    "ModelRow",
    "PredictionRecord",
    "QueueItem",
    "SiteStore",
    "SlotRow",
    "Slots",
    "StoredInput",
    "Transition",
    "canonical_json",
    "entry_hash",
]
