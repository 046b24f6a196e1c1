"""A reply the SuperNode could not deliver is marked in the egress ledger beside its own entry.

The reply is ledgered by the ClientApp's egress mod, with the site's real store; the send and
push calls are those the SuperNode's push loop makes, failing as they fail when the line drops
or the SuperLink no longer knows the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from edge_agent.federation.client_app import egress_ledger_mod
from edge_agent.federation.undelivered import NOT_DELIVERED, NOT_TAKEN, DeliveryWatch, mark_not_delivered
from edge_agent.store import SiteStore


def _ledgered_reply(site: Path, message_id: str) -> Message:
    metadata = Metadata(run_id=42, message_id=message_id, src_node_id=1, dst_node_id=11,
                        reply_to_message_id="", group_id="3", created_at=0.0, ttl=600.0,
                        message_type="query")  # fmt: skip
    context = Context(run_id=42, node_id=11, node_config={"data": str(site), "superlink": "plant-it:9092"},
                      state=RecordDict(), run_config={})  # fmt: skip
    receipt = RecordDict({"bundle_receipt": ConfigRecord({"version": 7, "outcome": 1})})
    message = Message(RecordDict({"probe": ConfigRecord({"do": "x"})}), metadata=metadata)
    return egress_ledger_mod(message, context, lambda m, c: Message(receipt, reply_to=m))


def _ledger(site: Path) -> list[dict[str, Any]]:
    with SiteStore(site / "store.db") as store:
        assert store.verify_chain("egress").ok
        return [entry.fields for entry in reversed(store.egress(limit=100))]


def test_the_mark_names_the_reply_it_stands_for_and_the_chain_still_verifies(tmp_path: Path) -> None:
    _ledgered_reply(tmp_path, "m1")
    _ledgered_reply(tmp_path, "m2")

    assert mark_not_delivered(tmp_path, 42, "m1", "RunNotRunningException") == {
        "kind": "bundle_receipt",
        "round": 3,
    }
    assert mark_not_delivered(tmp_path, 42, "m9", "ReadError: dropped") is None  # nothing ledgered for it
    assert mark_not_delivered(tmp_path, 43, "m2", "ReadError: dropped") is None  # another run's

    first, second, mark = _ledger(tmp_path)
    assert mark["kind"] == NOT_DELIVERED and mark["payload_bytes"] == 0 and mark["round"] == 3
    assert mark["content_sha256"] == first["content_sha256"] and mark["destination"] == "plant-it:9092"
    assert mark["details"] == {
        "run": "42",
        "reply_to": "m1",
        "kind": "bundle_receipt",
        "reason": "RunNotRunningException",
    }
    assert first["details"]["reply_to"] == "m1" and second["details"]["reply_to"] == "m2"


def _reply(message_id: str, answering: str) -> Any:
    metadata = Metadata(run_id=42, message_id=message_id, src_node_id=11, dst_node_id=1,
                        reply_to_message_id=answering, group_id="3", created_at=0.0, ttl=600.0,
                        message_type="query")  # fmt: skip
    return Message(RecordDict(), metadata=metadata)


def test_a_reply_that_failed_or_was_not_taken_is_noted_and_one_that_went_through_is_not() -> None:
    watch = DeliveryWatch()

    def send(message: Any, tree: Any, runtime: float) -> tuple[set[str], str]:
        if message.metadata.reply_to_message_id == "in-refused":
            raise RuntimeError("run 42 is not running")
        if message.metadata.reply_to_message_id == "in-answered":  # a second push of a reply it holds
            return set(), "session"
        return {"object"}, "session"

    def push_object(run: int, session: str, object_id: str, content: bytes) -> None:
        if content == b"cut":
            raise ConnectionResetError("the line dropped")

    sending, pushing = watch.send(send), watch.push_object(push_object)
    for reply_id, answering, content in (
        ("r1", "in-ok", b"x"),
        ("r2", "in-refused", b"x"),
        ("r3", "in-ok", b"cut"),
        ("r4", "in-answered", b"x"),
    ):
        try:
            sending(_reply(reply_id, answering), None, 0.1)
            pushing(42, "session", "object", content)
        except (RuntimeError, ConnectionResetError):
            pass  # Flower's push loop logs it and drops the reply

    assert {key: reason for key, (_, reason) in watch.failed.items()} == {
        "r2": "RuntimeError: run 42 is not running",
        "r3": "ConnectionResetError: the line dropped",
        "r4": NOT_TAKEN,
    }
    with pytest.raises(RuntimeError):  # the failure still reaches Flower's loop as it came
        sending(_reply("r5", "in-refused"), None, 0.1)


def test_a_reply_left_waiting_in_the_supernode_names_its_run_so_flower_sends_it() -> None:
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.supernode.nodestate.in_memory_nodestate import InMemoryNodeState

    from edge_agent.federation.undelivered import _run_of_waiting_reply

    state = InMemoryNodeState(ObjectStoreFactory().store())
    incoming = _reply("in-1", "")  # a message from the SuperLink: no reply_to
    state.store_message(incoming)
    assert _run_of_waiting_reply(state) is None
    state.store_message(_reply("r1", "in-1"))  # the ClientApp's answer, not sent
    assert _run_of_waiting_reply(state) == 42
    assert [m.metadata.message_id for m in state.get_messages_legacy(is_reply=True)] == [
        "r1"
    ]  # Flower sends it
    assert _run_of_waiting_reply(state) is None
