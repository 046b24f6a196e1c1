"""What a site may send to the federation: these message shapes, and nothing else.

Every reply a site's ClientApp sends is described as records of named fields (the shape of a
Flower ``RecordDict``, converted by the ClientApp without this module importing Flower) and
must match exactly one shape below, field for field and type for type; anything else is a
:class:`ProtocolViolation` and is not sent. The shapes are SecAgg+'s four stages (public keys,
encrypted key shares, the masked update with its example count, unmasking shares) and the
evaluation reply (loss, example count), and the receipt for a delivered bundle (its version and
an outcome code). Metrics are limited to a few named scalars; a status
message may only say success. There is no field a report's text, an input or a label could
travel in, and the plaintext update never appears (it is masked; its parameters record is empty).

Observed on Flower 1.42's legacy SecAgg+ path (``secaggplus_mod`` + ``NumPyClient``) with a real
SuperLink: each stage's reply is exactly one of these shapes.

A site that cannot answer sends an error reply, and that too is a shape: one of the codes in
:data:`ERROR_REASONS` with that code's fixed reason, never an exception's text (the real cause
stays in the site's audit log). Every reply is ledgered with the SHA-256 of
:func:`canonical_bytes`, one spelling of its plain content, so what the ledger says left can be
compared with what the server received.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genba.errors import GenbaError

#: Fewer sites than this in a round and its sum could reveal one site's update: never aggregated.
MIN_SITES_PER_ROUND = 3
#: The only metrics a site reports, each a number: how the model does on the site's own
#: evaluation split, which production model the site runs, and the newest version it holds
#: (its own training candidates included), so that IT numbers a new global model above it.
METRICS: dict[str, type] = {
    "accuracy": float,
    "loss": float,
    "production_version": int,
    "newest_version": int,
}
#: The only status messages a reply may carry.
STATUS_MESSAGES = frozenset({"", "Success"})
#: The Flower message type that delivers a signed bundle to a site (no training round).
DELIVERY_MESSAGE_TYPE = "query.bundle"
#: What a site answers to a delivery, as an index into this tuple (a number, never text):
#: installed as the candidate; it already had that bundle; refused (signature, version or the
#: agent's own checks; the reason stays in the site's audit log); files it was expected to hold
#: already (the backbone) are missing, so IT must ship the full bundle; failed otherwise.
RECEIPT_OUTCOMES = ("installed", "already-installed", "refused", "missing-files", "failed")

BYTES, INT, FLOAT, STR = "bytes", "int", "float", "str"
BYTES_LIST, INT_LIST = "list[bytes]", "list[int]"
_METRICS = "metrics"  # marker: any subset of METRICS
_STATUS = {"code": INT, "message": STR}


_ARRAYS = "arrays"  # marker: any number of named arrays (serialised bytes)


@dataclass(frozen=True)
class Shape:
    kind: str  # the egress ledger's kind for this message
    records: Mapping[str, Mapping[str, str] | str]


SHAPES: tuple[Shape, ...] = (
    Shape("secagg_public_keys", {"secaggplus_configs": {"pk1": BYTES, "pk2": BYTES}}),
    Shape("secagg_key_shares", {"secaggplus_configs": {"dsts": INT_LIST, "ctxts": BYTES_LIST}}),
    Shape(
        "masked_update",
        {
            "secaggplus_configs": {},
            "secaggplus_masked": _ARRAYS,
            "fitres.parameters": {},
            "fitres.num_examples": {"num_examples": INT},
            "fitres.metrics": _METRICS,
            "fitres.status": _STATUS,
        },
    ),
    Shape("secagg_unmask_shares", {"secaggplus_configs": {"nids": INT_LIST, "shares": BYTES_LIST}}),
    Shape(
        "evaluation",
        {
            "evaluateres.loss": {"loss": FLOAT},
            "evaluateres.num_examples": {"num_examples": INT},
            "evaluateres.metrics": _METRICS,
            "evaluateres.status": _STATUS,
        },
    ),
    Shape("bundle_receipt", {"bundle_receipt": {"version": INT, "outcome": INT}}),
)


#: A plain, unmasked update: allowed only from a SuperNode started for a benchmark
#: (``genba agent join`` never allows it), to measure what SecAgg+ costs against plain FedAvg.
UNMASKED_SHAPE = Shape(
    "unmasked_update",
    {
        "fitres.parameters": _ARRAYS,
        "fitres.num_examples": {"num_examples": INT},
        "fitres.metrics": _METRICS,
        "fitres.status": _STATUS,
    },
)


#: The error replies a site may send: code -> the one reason that code carries.
ERROR_FAILED = 4500  # the ClientApp failed (an exception in Genba, Flower or the trainer)
ERROR_REFUSED_REPLY = 4403  # the reply did not match a shape above and was not sent
ERROR_ROUND_REFUSED = 4409  # the site declined the round (another model, privacy floor, ε budget)
ERROR_APP_NOT_APPROVED = 4451  # the run's app (FAB) is not one this site approved
ERROR_REASONS: dict[int, str] = {
    ERROR_FAILED: "the site's ClientApp failed; the reason is in the site's audit log",
    ERROR_REFUSED_REPLY: "reply refused by the site's protocol check",
    ERROR_ROUND_REFUSED: "the site declined this round; the reason is in the site's audit log",
    ERROR_APP_NOT_APPROVED: "the site runs only app code it approved; this run's app was not",
}
ERROR_KIND = "error"  # the egress ledger's kind for an error reply
#: The record an error reply is described as (for its size and its hash).
ERROR_RECORD = "error"


class ProtocolViolation(GenbaError):
    """A site was about to send something the protocol does not allow; it was not sent."""


def check_outgoing(content: Mapping[str, Mapping[str, Any]], *, allow_unmasked: bool = False) -> str:
    """The ledger kind of ``content`` (record name → field → value), or ProtocolViolation."""
    records = set(content)
    shapes = (*SHAPES, UNMASKED_SHAPE) if allow_unmasked else SHAPES
    candidates = [shape for shape in shapes if records == set(shape.records)]
    # SecAgg+'s stages share one record name: the fields tell them apart.
    exact = [shape for shape in candidates if all(_same_fields(shape, name, content) for name in records)]
    for shape in exact or candidates[:1]:
        for record, fields in shape.records.items():
            _check_record(shape.kind, record, fields, content[record])
        return shape.kind
    raise ProtocolViolation(
        f"outgoing message with records {sorted(records)} matches no allowed shape; nothing was sent"
    )


def check_error(code: int, reason: str) -> str:
    """The ledger kind of an error reply (``"error"``) if ``code`` is in the table with its own reason."""
    if ERROR_REASONS.get(code) != reason or isinstance(code, bool):
        raise ProtocolViolation(
            f"an error reply may carry only a code from genba.protocol.ERROR_REASONS with its fixed reason "
            f"(got code {code!r}); nothing was sent"
        )
    return ERROR_KIND


def error_content(code: int) -> dict[str, dict[str, Any]]:
    """An error reply as plain content (what its ledger entry sizes and hashes)."""
    return {ERROR_RECORD: {"code": code, "reason": ERROR_REASONS[code]}}


def _same_fields(shape: Shape, record: str, content: Mapping[str, Mapping[str, Any]]) -> bool:
    fields = shape.records[record]
    return fields in (_METRICS, _ARRAYS) or set(fields) == set(content[record])


def payload_bytes(content: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of the values a message carries (what the egress ledger records as its size)."""
    return sum(_size(value) for fields in content.values() for value in fields.values())


def canonical_bytes(content: Mapping[str, Mapping[str, Any]]) -> bytes:
    """One spelling of plain content: records and fields sorted by name, each value tagged with
    its type and length-prefixed, so two contents hash alike exactly when they are equal (an int
    is never a float, bytes never text)."""
    out = bytearray(b"genba-content-1")
    out += _count(len(content))
    for record in sorted(content):
        fields = content[record]
        out += _text(record) + _count(len(fields))
        for name in sorted(fields):
            out += _text(name) + _value(fields[name])
    return bytes(out)


def content_sha256(content: Mapping[str, Mapping[str, Any]]) -> str:
    """The SHA-256 (hex) of :func:`canonical_bytes`: what the egress ledger records per message."""
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def _count(number: int) -> bytes:
    return struct.pack(">Q", number)


def _text(text: str) -> bytes:
    data = text.encode("utf-8")
    return _count(len(data)) + data


def _value(value: Any) -> bytes:
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return b"?" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"i" + _text(str(value))
    if isinstance(value, float):
        return b"f" + struct.pack(">d", value)
    if isinstance(value, str):
        return b"s" + _text(value)
    if isinstance(value, (bytes, bytearray)):
        return b"b" + _count(len(value)) + bytes(value)
    if isinstance(value, list):
        return b"l" + _count(len(value)) + b"".join(_value(item) for item in value)
    raise ProtocolViolation(f"a {type(value).__name__} has no canonical form; nothing was sent")


def _check_record(kind: str, record: str, fields: Mapping[str, str] | str, values: Mapping[str, Any]) -> None:
    if fields == _ARRAYS:
        for name, value in values.items():
            _require(kind, f"{record}.{name}", value, BYTES)
        return
    if fields == _METRICS:
        unknown = sorted(set(values) - set(METRICS))
        if unknown:
            raise ProtocolViolation(
                f"{kind}: metric {unknown[0]!r} is not one a site may report; nothing was sent"
            )
        for name, value in values.items():
            _require(kind, f"{record}.{name}", value, "int" if METRICS[name] is int else FLOAT)
        return
    assert isinstance(fields, Mapping)
    if set(values) != set(fields):
        extra = sorted(set(values) ^ set(fields))
        raise ProtocolViolation(
            f"{kind}: {record} has unexpected or missing fields {extra}; nothing was sent"
        )
    for name, expected in fields.items():
        _require(kind, f"{record}.{name}", values[name], expected)
    if "message" in values and values["message"] not in STATUS_MESSAGES:
        raise ProtocolViolation(f"{kind}: a status message may only report success; nothing was sent")


def _require(kind: str, where: str, value: Any, expected: str) -> None:
    ok = {
        BYTES: isinstance(value, bytes),
        INT: isinstance(value, int) and not isinstance(value, bool),
        FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
        STR: isinstance(value, str),
        BYTES_LIST: isinstance(value, list) and all(isinstance(item, bytes) for item in value),
        INT_LIST: isinstance(value, list) and all(isinstance(item, int) for item in value),
    }[expected]
    if not ok:
        raise ProtocolViolation(
            f"{kind}: {where} must be {expected}, not {type(value).__name__}; nothing was sent"
        )


def _size(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, list):
        return sum(_size(item) for item in value)
    return 8  # a number
