"""The egress ledger's mod: every reply, error replies included, is checked and ledgered with its hash.

The mod is called as Flower calls it inside the site's ClientApp, on messages shaped as a SuperNode
hands them over, with the site's real store. What it returns is exactly what the SuperNode sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flwr.app import ConfigRecord, Context, Error, Message, Metadata, RecordDict

from edge_agent.federation.client_app import egress_ledger_mod, plain_content
from edge_agent.store import SiteStore
from genba.errors import GenbaError
from genba.protocol import (
    ERROR_FAILED,
    ERROR_REASONS,
    ERROR_REFUSED_REPLY,
    ERROR_ROUND_REFUSED,
    content_sha256,
    error_content,
)

SECRET = "scratch on housing lot qz7-4711"  # what a site's exception could hold: its own data


def _message() -> Message:
    metadata = Metadata(run_id=42, message_id="m1", src_node_id=1, dst_node_id=11, reply_to_message_id="",
                        group_id="3", created_at=0.0, ttl=600.0, message_type="query")  # fmt: skip
    return Message(RecordDict({"probe": ConfigRecord({"do": "x"})}), metadata=metadata)


def _context(site: Path) -> Context:
    node_config = {"data": str(site), "superlink": "plant-it:9092"}
    return Context(run_id=42, node_id=11, node_config=node_config, state=RecordDict(), run_config={})


def _ledger(site: Path) -> list[dict[str, Any]]:
    with SiteStore(site / "store.db") as store:
        assert store.verify_chain("egress").ok
        return [entry.fields for entry in reversed(store.egress(limit=100))]


def _audit(site: Path) -> list[dict[str, Any]]:
    with SiteStore(site / "store.db") as store:
        return [entry.fields for entry in reversed(store.audit(limit=100))]


def _failing(error: BaseException) -> Any:
    def call_next(msg: Message, context: Any) -> Message:
        raise error

    return call_next


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KeyError(SECRET), ERROR_FAILED),
        (RuntimeError(f"could not embed {SECRET!r}"), ERROR_FAILED),
        (GenbaError(f"this site serves another model; last input {SECRET}"), ERROR_ROUND_REFUSED),
        (PermissionError(f"refused: {SECRET}"), ERROR_ROUND_REFUSED),
    ],
)
def test_an_exception_leaves_as_a_fixed_code_and_reason_ledgered_and_its_text_stays_in_the_audit_log(
    tmp_path: Path, error: BaseException, code: int
) -> None:
    reply = egress_ledger_mod(_message(), _context(tmp_path), _failing(error))

    assert reply.has_error() and not reply.has_content()
    assert (reply.error.code, reply.error.reason) == (code, ERROR_REASONS[code])
    assert SECRET not in reply.error.reason and reply.metadata.reply_to_message_id == "m1"
    [entry] = _ledger(tmp_path)
    assert entry["kind"] == "error" and entry["round"] == 3 and entry["destination"] == "plant-it:9092"
    assert entry["content_sha256"] == content_sha256({"error": {"code": code, "reason": ERROR_REASONS[code]}})
    assert entry["payload_bytes"] == 8 + len(ERROR_REASONS[code]) and entry["details"] == {
        "code": code,
        "run": "42",
        "reply_to": "m1",
    }
    [audited] = [a for a in _audit(tmp_path) if a["event"] == "federated_error_reply"]
    assert SECRET in audited["details"]["reason"] and audited["details"]["code"] == code


def test_an_inner_error_reply_keeps_a_known_code_and_loses_its_reason(tmp_path: Path) -> None:
    def inner(code: int) -> Any:
        return lambda msg, context: Message(Error(code=code, reason=f"failed on {SECRET}"), reply_to=msg)

    known = egress_ledger_mod(_message(), _context(tmp_path), inner(ERROR_ROUND_REFUSED))
    flower = egress_ledger_mod(_message(), _context(tmp_path), inner(2))  # Flower's "ClientApp raised"
    assert (known.error.code, known.error.reason) == (ERROR_ROUND_REFUSED, ERROR_REASONS[ERROR_ROUND_REFUSED])
    assert (flower.error.code, flower.error.reason) == (ERROR_FAILED, ERROR_REASONS[ERROR_FAILED])
    assert [e["kind"] for e in _ledger(tmp_path)] == ["error", "error"]


def test_an_allowed_reply_leaves_unchanged_with_the_hash_of_its_content_and_a_leak_does_not(
    tmp_path: Path,
) -> None:
    receipt = RecordDict({"bundle_receipt": ConfigRecord({"version": 7, "outcome": 1})})
    sent = egress_ledger_mod(_message(), _context(tmp_path), lambda m, c: Message(receipt, reply_to=m))
    leak = RecordDict({"bundle_receipt": ConfigRecord({"version": 7, "outcome": 1, "note": SECRET})})
    refused = egress_ledger_mod(_message(), _context(tmp_path), lambda m, c: Message(leak, reply_to=m))

    assert sent.content is receipt
    assert (refused.error.code, refused.error.reason) == (
        ERROR_REFUSED_REPLY,
        ERROR_REASONS[ERROR_REFUSED_REPLY],
    )
    first, second = _ledger(tmp_path)
    assert first["kind"] == "bundle_receipt" and first["payload_bytes"] == 16
    assert first["content_sha256"] == content_sha256(plain_content(receipt))
    assert second["content_sha256"] == content_sha256(error_content(ERROR_REFUSED_REPLY))
    assert any(a["event"] == "egress_refused" for a in _audit(tmp_path))


def test_an_app_wrapping_genbas_clientapp_does_not_ledger_its_replies_twice(tmp_path: Path) -> None:
    receipt = RecordDict({"bundle_receipt": ConfigRecord({"version": 7, "outcome": 0})})

    def genbas(msg: Message, context: Any) -> Message:  # Genba's ClientApp: its own egress mod outermost
        return egress_ledger_mod(msg, context, lambda m, c: Message(receipt, reply_to=m))

    def failing_genbas(msg: Message, context: Any) -> Message:
        return egress_ledger_mod(msg, context, _failing(KeyError(SECRET)))

    for inner in (genbas, failing_genbas):  # as the site's ClientApp process runs another approved app
        egress_ledger_mod(_message(), _context(tmp_path), inner)
    assert [e["kind"] for e in _ledger(tmp_path)] == ["bundle_receipt", "error"]


def test_a_reply_that_cannot_be_ledgered_is_not_sent(tmp_path: Path) -> None:
    (tmp_path / "store.db").mkdir()  # the store cannot be opened: nothing may leave unledgered
    with pytest.raises(Exception):  # noqa: B017 (whatever the store raises reaches the ClientApp process)
        egress_ledger_mod(_message(), _context(tmp_path), _failing(KeyError(SECRET)))
