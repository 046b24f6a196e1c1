"""``flower-superlink`` with its state in memory and the registered sites on disk.

Flower 1.42 keeps its link state (registered nodes, runs, message metadata, task tokens) and its
object store (every message's payload: model tensors, masked updates, key shares) in the one SQLite
file given as ``--database``, through SQLAlchemy, in the SuperLink's single Python process: in a
federated round most of the SuperLink's CPU time went there (``bench/federated.py``), first writing
payloads, then looking up nodes, runs and tokens on every request a site makes. A payload lives only
until its message is delivered, and a run or message in flight does not survive a restart of the
SuperLink either way, so Genba's SuperLink keeps the object store in memory (Flower's own
``InMemoryObjectStore``) and the link state in memory too, but for the sites' registrations, which
:mod:`server.link_state` keeps in the file given as ``--database`` so that a restarted SuperLink
knows the sites (and the revoked ones) by the same node ids.

Run as ``python -m server.superlink_launch`` with ``flower-superlink``'s arguments.
"""

from __future__ import annotations

from typing import Any


def keep_objects_in_memory() -> None:
    """Make the SuperLink's object store Flower's in-memory one, whatever ``--database`` says."""
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.superlink import config_loader

    def in_memory(database: str) -> Any:
        return ObjectStoreFactory()

    config_loader.ObjectStoreFactory = in_memory  # type: ignore[assignment,misc]


def main() -> None:
    from genba import env  # noqa: F401  (telemetry off before Flower loads)

    keep_objects_in_memory()
    from server.link_state import use_registry_link_state

    use_registry_link_state()
    from flwr.superlink.cli.flower_superlink import flower_superlink

    flower_superlink()


if __name__ == "__main__":
    main()
