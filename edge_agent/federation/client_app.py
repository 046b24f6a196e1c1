"""The site's ClientApp: head training on the site store, secure aggregation, and the egress ledger.

Flower starts a fresh process for every message, so this module imports only Flower's client
side and numpy; the trainer (ONNX Runtime, torch) loads inside ``fit`` and ``evaluate``.

* ``fit``: the global head arrives; the site fits its head on its own training labels over
  embeddings cached from its production backbone, starting from (and pulled toward) the
  global head, and returns the new head with its example count. ``secaggplus_mod`` masks it.
* ``evaluate``: the global head's loss and accuracy on the site's held-out labels.
* ``egress_ledger_mod`` (outermost, so it sees exactly what leaves, after masking): every reply
  must match a shape in :mod:`genba.protocol` and is appended to the site's egress ledger
  (destination, kind, payload bytes, round); a reply that does not match is replaced by an
  error that carries nothing of it.

The site folder comes from the SuperNode's node config (``data="/path"``), set by
``genba agent join``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Error, Message
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod

log = logging.getLogger(__name__)
#: What a refused reply says instead (nothing of the reply itself).
REFUSED_REASON = "reply refused by the site's protocol check"
REFUSED_CODE = 4403


class SiteClient(NumPyClient):
    def __init__(self, data: Path) -> None:
        self.data = data

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        from edge_agent.federation.site_trainer import SiteTrainer

        trainer = SiteTrainer.open(self.data)
        head = trainer.fit(parameters)
        return [head.weight, head.bias], trainer.train_examples, {}

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict]:
        from edge_agent.federation.site_trainer import SiteTrainer

        trainer = SiteTrainer.open(self.data, embed_training=False)
        loss, accuracy, count = trainer.evaluate(parameters)
        return loss, count, {"accuracy": accuracy, "production_version": trainer.production_version}


def client_fn(context: Any) -> Any:
    return SiteClient(site_data(context)).to_client()


def site_data(context: Any) -> Path:
    data = context.node_config.get("data")
    if not data:
        raise ValueError(
            "this SuperNode was started without node config data=SITE_FOLDER; use 'genba agent join'"
        )
    return Path(str(data))


def egress_ledger_mod(msg: Message, context: Any, call_next: Any) -> Message:
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore
    from genba.protocol import ProtocolViolation, check_outgoing, payload_bytes

    reply: Message = call_next(msg, context)
    if not reply.has_content():
        return reply
    content = plain_content(reply.content)
    site = SiteFolder(site_data(context))
    try:
        kind = check_outgoing(content)
    except ProtocolViolation as violation:
        log.error("%s", violation)
        with SiteStore(site.store_file) as store:
            store.append_audit("egress_refused", "federation", {"reason": str(violation)})
        return Message(Error(code=REFUSED_CODE, reason=REFUSED_REASON), reply_to=msg)
    with SiteStore(site.store_file) as store:
        store.append_egress(
            destination=str(context.node_config.get("superlink", "superlink")),
            kind=kind,
            payload_bytes=payload_bytes(content),
            round=_round(msg),
        )
    return reply


def plain_content(content: Any) -> dict[str, dict[str, Any]]:
    """A RecordDict as record → field → plain value (bytes, numbers, strings, lists of them)."""
    plain: dict[str, dict[str, Any]] = {}
    for name, record in content.items():
        plain[name] = {key: _plain_value(value) for key, value in record.items()}
    return plain


def _plain_value(value: Any) -> Any:
    data = getattr(value, "data", None)
    if isinstance(data, bytes):  # an Array
        return data
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    return value


def _round(msg: Message) -> int | None:
    group = str(msg.metadata.group_id or "")
    return int(group) if group.isdigit() else None


app = ClientApp(client_fn=client_fn, mods=[egress_ledger_mod, secaggplus_mod])
