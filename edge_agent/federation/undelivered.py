"""Replies the site's SuperNode could not deliver, marked as such in the egress ledger.

The ClientApp ledgers every reply before it leaves (:mod:`edge_agent.federation.client_app`) and
hands it to the SuperNode, which sends it to the SuperLink. Flower's SuperNode drops a reply it
fails to send, with a line in its log: the SuperLink refused it (its run had ended, or the
SuperLink restarted and no longer knows the message it answers), or the connection failed in a
way Flower does not retry (or, see :func:`_run_of_waiting_reply`, it would have sent it only with
the next message). Here, in the SuperNode's own process
(:mod:`edge_agent.federation.supernode_launch`), each such reply gets an entry of kind
:data:`NOT_DELIVERED` in the egress ledger: the content hash, run and round of the reply's own
entry, the message it answered and why it did not arrive, with no payload. Every entry of the
ledger is then either a reply the SuperLink accepted or one marked as not delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NOT_DELIVERED = "not_delivered"
#: Why a reply the SuperLink answered without asking for any of its objects is marked: it did not
#: store it. Flower's SuperNode calls that sent. It happens when the line drops while the SuperLink
#: answers the reply's first push: the SuperLink holds the reply but none of its objects, and takes
#: no second push of it ("duplicate reply"), so its content never arrives.
NOT_TAKEN = "the SuperLink did not take the reply (it held one already, or no longer knew the message)"
#: How far back a failed reply's own entry is looked for (newest first).
RECENT_ENTRIES = 500


class DeliveryWatch:
    """Wraps one pass of Flower's reply push: notes each reply whose sending raised, or that the
    SuperLink did not take, and why."""

    def __init__(self) -> None:
        self._sending: Any = None
        self.failed: dict[str, tuple[Any, str]] = {}  # reply's message id -> (reply, reason)

    def send(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def sending(message: Any, *args: Any) -> Any:
            self._sending = message
            objects, session = self._noting_failure(send, message, *args)
            if not objects:  # the reply itself is always new to the SuperLink, unless it did not store it
                self.failed[message.metadata.message_id] = (message, NOT_TAKEN)
            return objects, session

        return sending

    def push_object(self, push_object: Callable[..., Any]) -> Callable[..., Any]:
        def pushing(*args: Any) -> Any:
            return self._noting_failure(push_object, *args)

        return pushing

    def _noting_failure(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except BaseException as error:
            reply = self._sending
            if reply is not None:
                reason = str(error) or type(error).__name__
                self.failed[reply.metadata.message_id] = (reply, f"{type(error).__name__}: {reason}"[:300])
            raise


def mark_undelivered_replies(site: Path) -> None:
    """From now on, a reply this process's SuperNode fails to send is marked in ``site``'s ledger."""
    from flwr.supernode import start_client_internal as internal

    push_messages, pull_and_store = internal._push_messages, internal._pull_and_store_message

    def pull_or_send_waiting(*args: Any, **kwargs: Any) -> int | None:
        run = pull_and_store(*args, **kwargs)
        return run if run is not None else _run_of_waiting_reply(kwargs["state"])

    def push_and_mark(state: Any, object_store: Any, send: Any, push_object: Any) -> None:
        watch = DeliveryWatch()
        try:
            push_messages(state, object_store, watch.send(send), watch.push_object(push_object))
        finally:
            for reply, reason in watch.failed.values():
                try:
                    mark_not_delivered(
                        site, reply.metadata.run_id, reply.metadata.reply_to_message_id, reason
                    )
                except Exception:  # the SuperNode carries on; its log says which reply is unmarked
                    log.exception(
                        "reply %s was not delivered and could not be marked", reply.metadata.message_id
                    )

    internal._push_messages = push_and_mark
    internal._pull_and_store_message = pull_or_send_waiting


def _run_of_waiting_reply(state: Any) -> int | None:
    """The run of a reply the SuperNode holds unsent, or None.

    Flower sends replies only after it pulled a message. The site's ClientApp takes a message as soon
    as its objects are in, so when the line drops while the SuperNode confirms the message, and its
    run ends before the line is back, Flower drops the message it was pulling while the ClientApp's
    reply to it (ledgered) waits in the SuperNode for a next message that may never come. Naming its
    run makes Flower's loop send it now: the SuperLink takes it or refuses it, and a refusal is marked.
    """
    messages, lock = getattr(state, "msg_store", None), getattr(state, "lock_msg_store", None)
    if messages is None or lock is None:  # another NodeState than Flower's in-memory one: Flower's way
        return None
    with lock:
        for entry in messages.values():
            if not entry.is_retrieved and entry.message.metadata.reply_to_message_id:
                return int(entry.message.metadata.run_id)
    return None


def mark_not_delivered(site: Path, run: int, answered: str, reason: str) -> dict[str, Any] | None:
    """Append the mark for the ledgered reply of ``run`` that answered message ``answered``; the mark's
    fields, or None when no such reply is in the ledger (nothing left the ClientApp for it)."""
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore

    with SiteStore(SiteFolder(site).store_file) as store:
        sent = _ledgered_reply(store, str(run), answered)
        if sent is None:
            log.warning("a reply to message %s of run %s was not delivered nor ledgered", answered, run)
            return None
        fields = sent.fields
        store.append_egress(
            destination=fields["destination"],
            kind=NOT_DELIVERED,
            payload_bytes=0,
            content_sha256=fields["content_sha256"],
            round=fields["round"],
            details={"run": str(run), "reply_to": answered, "kind": fields["kind"], "reason": reason},
        )
    kind, round_ = fields["kind"], fields["round"]
    log.warning("the %s reply of run %s, round %s, was not delivered: %s", kind, run, round_, reason)
    return {"kind": kind, "round": round_}


def _ledgered_reply(store: Any, run: str, answered: str) -> Any:
    """The ledger entry of the reply to ``answered`` in ``run``: among the newest entries, as the
    reply was ledgered moments before the SuperNode tried to send it."""
    for entry in store.egress(limit=RECENT_ENTRIES):
        details = entry.fields["details"]
        ours = details.get("reply_to") == answered and details.get("run") == run
        if ours and entry.fields["kind"] != NOT_DELIVERED:
            return entry
    return None
