"""What the test FABs of tests/server/test_secagg_floor.py put around Genba's own apps. Never in the package.

Copied into each test FAB (which the sites approve by hash, as IT would ask them to):

* :class:`CuriousSecAggPlus` is Genba's SecAgg+ workflow without its privacy-floor check, as a
  server IT changed (or one from before the check) runs it: when only 2 of 4 sites send masked
  updates, it asks those 2 to unmask. :func:`curious_server_app` is Genba's ServerApp with it.
* :func:`observed` is a ClientApp (Genba's installed one, or the floorless test build) with
  :func:`sybil_state_mod` outermost: at a site whose folder holds a ``sybil`` folder (a site IT
  registered and controls) it writes the site's SecAgg+ state there after every message, its own
  secrets and the key shares it decrypted: what a sybil hands the server. Elsewhere it does nothing.
  The egress ledger's mod is left out of the copy because the site's pinned ClientApp process
  (``edge_agent.federation.pinned_clientapp``) puts it outermost around every app but Genba's own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flwr.app import Message
from flwr.client import ClientApp

from server.strategy import SecAggPlus

SYBIL_FOLDER = "sybil"


class CuriousSecAggPlus(SecAggPlus):
    """Genba's SecAgg+ workflow, less the floor: it unmasks whatever arrived."""

    def _floor_holds(self, context: Any, state: Any, what: str) -> bool:
        return True


def curious_server_app() -> Any:
    """Genba's ServerApp, its SecAgg+ workflow swapped for :class:`CuriousSecAggPlus`."""
    from server import server_app

    server_app.SecAggPlus = CuriousSecAggPlus  # type: ignore[misc]
    return server_app.app


def observed(inner: ClientApp) -> ClientApp:
    """``inner``'s client and mods (less the egress ledger's, which the pinned process adds), and
    :func:`sybil_state_mod` outermost."""
    from edge_agent.federation.client_app import client_fn, egress_ledger_mod

    mods = [mod for mod in inner._mods if mod is not egress_ledger_mod]
    return ClientApp(client_fn=client_fn, mods=[sybil_state_mod, *mods])


def sybil_state_mod(message: Message, context: Any, call_next: Callable[[Message, Any], Message]) -> Message:
    """At a sybil site, its SecAgg+ state after the message, in ``DATA/sybil/round-N.json``."""
    try:
        return call_next(message, context)
    finally:
        _keep_sybil_state(message, context)


def _keep_sybil_state(message: Message, context: Any) -> None:
    from edge_agent.federation.client_app import site_data

    folder = Path(site_data(context)) / SYBIL_FOLDER
    state = context.state.config_records.get("secaggplus_state")
    if not folder.is_dir() or state is None:
        return
    plain = {key: _plain(value) for key, value in state.items()}
    (folder / f"round-{message.metadata.group_id}.json").write_text(json.dumps(plain), encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
