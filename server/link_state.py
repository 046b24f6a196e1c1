"""The SuperLink's link state: Flower's in-memory one, with the registered sites kept on disk.

Flower 1.42 offers its link state (registered nodes, runs, messages, task tokens) in SQLite through
SQLAlchemy, or in memory. In SQLite it cost the SuperLink most of its CPU in a federated round
(``bench/federated.py``): every Fleet request a site makes (a poll, each object pulled or pushed)
looks its node up, checks its run's status and cleans expired tokens with SQL queries, on the 2 cores
the SuperLink shares with the front, the ServerApp and the sites of a loopback federation.

Of that state only the registrations must outlive a restart: a site's SuperNode keeps the node id it
activated with, and a revoked site must stay unregistered. A run or a message in flight ends with the
SuperLink either way (the ServerApp ends with it). :class:`RegistryLinkState` is Flower's
``InMemoryLinkState`` whose registrations (node id, owner, public key, name, registered or
unregistered) are written to a JSON file on each change and read back at start; everything else
lives in memory. Loaded only by the SuperLink's own process (:mod:`server.superlink_launch`).

Earlier Genba releases kept the whole link state in ``superlink.db`` beside that file: on the first
start without the file, the registrations are read from it (with Flower's own ``SqlLinkState``), so
an upgraded server knows the sites by the node ids their running SuperNodes hold.

A retried push is acknowledged: when the line drops after the SuperLink stored an object a site
pushed but before its answer arrived, the site's SuperNode pushes it again. Flower answers that
retry "not stored" (the object is no longer pending; after a reply's last object, its push session
is gone), and the SuperNode then counts a reply the SuperLink holds whole as not delivered. The
objects stored in the last :data:`OBJECT_PUSH_SESSION_TTL_SECONDS` are remembered by run, push
session and object id, and a push of one of them in the same session is answered "stored".
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from flwr.proto.node_pb2 import NodeInfo
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
from flwr.supercore.constant import OBJECT_PUSH_SESSION_TTL_SECONDS, NodeStatus
from google.protobuf import json_format

from genba.files import write_json_atomically

#: Where earlier releases kept the SuperLink's whole state (SQLite), beside the registry file.
EARLIER_DATABASE = "superlink.db"
#: The fields of a registration that are kept; activity (online, heartbeats) starts afresh.
KEPT = ("node_id", "owner_aid", "owner_name", "status", "registered_at", "unregistered_at",
        "heartbeat_interval", "public_key", "location", "name")  # fmt: skip
#: At most this many stored objects are remembered for acknowledging a retried push.
REMEMBERED_OBJECTS = 100_000


class RegistryLinkState(InMemoryLinkState):
    """Flower's in-memory link state; node registrations persist in ``registry``."""

    def __init__(self, registry: Path, federation_manager: Any, object_store: Any) -> None:
        super().__init__(federation_manager, object_store)
        self.registry = Path(registry)
        self._taken = TakenObjects()

    def initialize(self) -> None:
        """Read the registrations kept by an earlier run of the SuperLink (none on first start)."""
        earlier = self.registry.with_name(EARLIER_DATABASE)
        if self.registry.is_file():
            kept = json.loads(self.registry.read_text(encoding="utf-8"))["nodes"]
        elif earlier.is_file():
            kept = [_kept(node) for node in _registrations_in(earlier)]
        else:
            return
        with self.lock:
            for node in (json_format.ParseDict(entry, NodeInfo()) for entry in kept):
                self.nodes[node.node_id] = node
                self.node_public_key_to_node_id[node.public_key] = node.node_id
                self.owner_to_node_ids.setdefault(node.owner_aid, set()).add(node.node_id)
            if not self.registry.is_file():
                self._write_registry()  # taken over from the earlier database, kept here from now on

    def create_node(self, *args: Any, **kwargs: Any) -> int:
        with self.lock:
            node_id: int = super().create_node(*args, **kwargs)
            if node_id:
                self._write_registry()
            return node_id

    def delete_node(self, owner_aid: str, node_id: int) -> None:
        with self.lock:
            super().delete_node(owner_aid, node_id)
            self._write_registry()

    def store_object(self, run_id: int, session_id: str, object_id: str, object_content: bytes) -> bool:
        """Flower's store; a push of an object this session stored already is answered stored."""
        pushed = (run_id, session_id, object_id)
        if super().store_object(run_id, session_id, object_id, object_content):
            self._taken.add(pushed)
            return True
        return self._taken.holds(pushed)

    def _write_registry(self) -> None:
        """Replace the registry file in one step: a crash leaves the old or the new one, whole."""
        write_json_atomically(self.registry, {"nodes": [_kept(node) for node in self.nodes.values()]})


class TakenObjects:
    """The (run, push session, object id) of objects stored in the last push session TTL."""

    def __init__(
        self, ttl_s: float = OBJECT_PUSH_SESSION_TTL_SECONDS, limit: int = REMEMBERED_OBJECTS
    ) -> None:
        self.ttl_s, self.limit = ttl_s, limit
        self._stored_at: OrderedDict[tuple[int, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, pushed: tuple[int, str, str]) -> None:
        with self._lock:
            self._stored_at[pushed] = time.monotonic()
            self._stored_at.move_to_end(pushed)
            self._forget_old()

    def holds(self, pushed: tuple[int, str, str]) -> bool:
        with self._lock:
            self._forget_old()
            return pushed in self._stored_at

    def _forget_old(self) -> None:
        oldest = time.monotonic() - self.ttl_s
        while self._stored_at and (
            len(self._stored_at) > self.limit or next(iter(self._stored_at.values())) < oldest
        ):
            self._stored_at.popitem(last=False)


def _registrations_in(database: Path) -> list[Any]:
    """The nodes an earlier release's SQLite link state holds, read with Flower's own code."""
    from flwr.server.superlink.linkstate.sql_linkstate import SqlLinkState
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.superlink.federation.noop_federation_manager import NoOpFederationManager

    earlier = SqlLinkState(str(database), NoOpFederationManager(), ObjectStoreFactory().store())
    earlier.initialize()
    return list(earlier.get_node_info())


def _kept(node: Any) -> dict[str, Any]:
    """What a restart keeps of a node: its registration, as registered or unregistered (a site is
    online again at its next heartbeat)."""
    entry = json_format.MessageToDict(node, preserving_proto_field_name=True)
    kept = {key: value for key, value in entry.items() if key in KEPT}
    if kept["status"] != NodeStatus.UNREGISTERED:
        kept["status"] = NodeStatus.REGISTERED
    return kept


def use_registry_link_state() -> None:
    """Make the SuperLink's link state a :class:`RegistryLinkState` kept at ``--database``."""
    from flwr.server.superlink.linkstate import linkstate_factory

    def registry_backed(database: str, federation_manager: Any, object_store: Any) -> Any:
        return RegistryLinkState(Path(database), federation_manager, object_store)

    linkstate_factory.SqlLinkState = registry_backed  # type: ignore[assignment,misc]
