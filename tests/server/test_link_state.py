"""The SuperLink's link state: in memory, but a restart keeps the sites' registrations whole."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.link_state import KEPT, RegistryLinkState


def _state(registry: Path) -> Any:
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.superlink.federation.noop_federation_manager import NoOpFederationManager

    state = RegistryLinkState(registry, NoOpFederationManager(), ObjectStoreFactory().store())
    state.initialize()
    return state


def _public_key() -> bytes:
    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _register(state: Any, name: str, key: bytes) -> int:
    return int(state.create_node("it", "it", key, 10.0, name=name))


def test_a_restarted_link_state_knows_the_registered_sites_by_their_ids_and_keeps_the_revoked_out(
    tmp_path: Path,
) -> None:
    registry = tmp_path / "superlink-nodes.json"
    keys = {name: _public_key() for name in ("site-a", "site-b", "site-c")}
    first = _state(registry)
    ids = {name: _register(first, name, key) for name, key in keys.items()}
    assert first.activate_node(ids["site-a"], 10.0)  # online before the restart
    first.delete_node("it", ids["site-b"])  # revoked

    again = _state(registry)
    assert {n: again.get_node_id_by_public_key(k) for n, k in keys.items()} == {
        "site-a": ids["site-a"], "site-b": None, "site-c": ids["site-c"]
    }  # fmt: skip
    status = {node.name: node.status for node in again.get_node_info()}
    # Nobody is online after a restart until it says so; the revoked site stays unregistered.
    assert status == {"site-a": "registered", "site-b": "unregistered", "site-c": "registered"}
    assert again.acknowledge_node_heartbeat(ids["site-a"], 10.0)
    assert not again.acknowledge_node_heartbeat(ids["site-b"], 10.0)
    assert {node.node_id for node in again.get_node_info(statuses=["online"])} == {ids["site-a"]}
    with pytest.raises(ValueError, match="Public key already in use"):
        _register(again, "site-b", keys["site-b"])  # a revoked key is not registered again


def test_the_registry_holds_public_material_only_and_is_replaced_whole(tmp_path: Path) -> None:
    registry = tmp_path / "superlink-nodes.json"
    state = _state(registry)
    key = _public_key()
    node_id = _register(state, "site-a", key)
    kept = json.loads(registry.read_text(encoding="utf-8"))["nodes"]
    assert [(int(n["node_id"]), n["name"], n["status"]) for n in kept] == [(node_id, "site-a", "registered")]
    assert set(kept[0]) <= set(KEPT)  # no activity, no run, nothing but the registration
    assert os.listdir(tmp_path) == [registry.name]  # no temporary file left behind

    # No runs or messages are kept: a restarted SuperLink starts with none.
    run_id = state.create_run("fab", "1.0", "hash", {}, "none", None, "it", "flwr-serverapp")
    assert run_id and [run.run_id for run in state.get_run_info()] == [run_id]
    assert list(_state(registry).get_run_info()) == []


def test_an_upgraded_server_takes_the_registrations_over_from_the_earlier_sqlite_state(
    tmp_path: Path,
) -> None:
    from flwr.server.superlink.linkstate.sql_linkstate import SqlLinkState
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.superlink.federation.noop_federation_manager import NoOpFederationManager

    # What an earlier release's SuperLink left: Flower's SQLite link state in it/server/superlink.db.
    store = ObjectStoreFactory().store()
    earlier = SqlLinkState(str(tmp_path / "superlink.db"), NoOpFederationManager(), store)
    earlier.initialize()
    keys = {name: _public_key() for name in ("site-a", "site-b")}
    ids = {name: _register(earlier, name, key) for name, key in keys.items()}
    earlier.delete_node("it", ids["site-b"])

    registry = tmp_path / "superlink-nodes.json"
    upgraded = _state(registry)
    assert upgraded.get_node_id_by_public_key(keys["site-a"]) == ids["site-a"]  # the id its SuperNode holds
    assert upgraded.get_node_id_by_public_key(keys["site-b"]) is None  # revoked stays revoked
    assert registry.is_file()  # kept in the registry from now on
    earlier.delete_node("it", ids["site-a"])  # the old database no longer counts once taken over
    assert _state(registry).get_node_id_by_public_key(keys["site-a"]) == ids["site-a"]


def _reply_objects() -> tuple[Any, list[tuple[str, bytes]]]:
    """A reply's object tree and its objects in the order a SuperNode pushes them (root last)."""
    import numpy as np
    from flwr.app import ArrayRecord, Message, Metadata, RecordDict
    from flwr.supercore.inflatable.inflatable_object import (
        get_all_nested_objects,
        get_object_tree,
        iterate_object_tree,
    )

    metadata = Metadata(run_id=1, message_id="", src_node_id=11, dst_node_id=1, reply_to_message_id="m1",
                        group_id="1", created_at=0.0, ttl=600.0, message_type="train")  # fmt: skip
    message = Message(RecordDict({"head": ArrayRecord([np.arange(6, dtype=np.float32)])}), metadata=metadata)
    objects = get_all_nested_objects(message)
    tree = get_object_tree(message)
    return tree, [(t.object_id, objects[t.object_id].deflate()) for t in iterate_object_tree(tree)]


def test_a_retried_push_of_an_object_the_superlink_already_took_is_acknowledged_not_refused(
    tmp_path: Path,
) -> None:
    # The line drops after the SuperLink stored a reply's last object but before its answer reached
    # the site: the site's SuperNode pushes the object again. The SuperLink holds the whole reply, so
    # the retry must be answered "stored", not counted by the site as a reply that did not arrive.
    state = _state(tmp_path / "superlink-nodes.json")
    run_id = state.create_run("fab", "1.0", "hash", {}, "none", None, "it", "flwr-serverapp")
    tree, objects = _reply_objects()
    session = state.start_session(run_id)
    assert set(state.preregister_object_tree(tree, session)) == {object_id for object_id, _ in objects}
    for object_id, content in objects:
        assert state.store_object(run_id, session, object_id, content)
    last_id, last = objects[-1]
    assert state.store_object(run_id, session, last_id, last)  # the retry after the lost answer
    assert state.get_object(run_id, last_id) == last

    # Nothing else is taken on that ground: another run, another session, an object never pushed.
    assert not state.store_object(run_id + 1, session, last_id, last)
    assert not state.store_object(run_id, "another-session", last_id, last)
    assert not state.store_object(run_id, session, "0" * 64, b"never pushed")


def test_stored_objects_are_remembered_for_a_push_session_ttl_and_up_to_a_limit() -> None:
    from server.link_state import TakenObjects

    taken = TakenObjects(ttl_s=0.2, limit=2)
    for object_id in ("a", "b", "c"):
        taken.add((1, "s", object_id))
    assert [taken.holds((1, "s", i)) for i in ("a", "b", "c")] == [False, True, True]  # the oldest went
    time.sleep(0.3)
    assert not taken.holds((1, "s", "c"))  # a retry after the session's TTL is Flower's to refuse
