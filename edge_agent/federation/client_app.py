"""The site's ClientApp: head training on the site store, secure aggregation, and the egress ledger.

Flower starts a fresh process for every message, so this module imports only Flower's client
side and numpy; the trainer (ONNX Runtime, torch) loads inside ``fit`` and ``evaluate``.

* ``fit``: the global head arrives; the site fits its head on its own training labels over
  embeddings cached from its production backbone, starting from (and pulled toward) the
  global head, and returns the new head with its example count. ``secaggplus_mod`` masks it.
* ``evaluate``: the global head's loss and accuracy on the site's held-out labels.
* ``bundle_delivery_mod``: a signed bundle IT delivers (``genba server publish``, ``rollback``
  or the end of a run) is verified and installed as the candidate; only a receipt goes back.
* ``secure_aggregation_mod``: Flower's ``secaggplus_mod``; a training message outside SecAgg+
  is refused (only a SuperNode joined for ``bench/federated.py`` answers it, unmasked).
* ``dp_clipping_mod`` (innermost, so it clips before SecAgg+ masks): in a differentially
  private run, Flower's ``fixedclipping_mod`` clips the site's update to the run's norm; the
  ledger entry of the masked update records the DP settings and the run's epsilon.
* ``egress_ledger_mod`` (outermost, so it sees exactly what leaves, after masking): every reply
  must match a shape in :mod:`genba.protocol` and is appended to the site's egress ledger
  (destination, kind, payload bytes, round); a reply that does not match is replaced by an
  error that carries nothing of it.

The site folder comes from the SuperNode's node config (``data="/path"``), set by
``genba agent join``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
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
#: Set by a SuperNode joined for a benchmark: answers benchmark rounds, may send unmasked updates.
BENCH_ENV = "GENBA_FEDERATION_BENCH"
#: Set only in a ``genba simulate`` process: the folder of the simulated sites (``sim-NNN``).
SIMULATED_SITES_ENV = "GENBA_SIMULATED_SITES"
#: The backbone (SHA-256 of its file) the run's heads are trained on.
BACKBONE_PIN = "backbone-sha256"
#: Present in a round's fit config when the run is differentially private.
DP_NOISE = "dp-noise"


class SiteClient(NumPyClient):
    def __init__(self, data: Path) -> None:
        self.data = data

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        from edge_agent.federation.site_trainer import SiteTrainer

        if config.get("bench"):
            return benchmark_update(parameters), 1, {}

        with refusals_audited(self.data, "fit"):
            trainer = SiteTrainer.open(self.data, backbone=str(config.get(BACKBONE_PIN, "")))
            head = trainer.fit(parameters)
        # Under differential privacy every site weighs the same: its influence is its clipped update.
        weight = 1 if DP_NOISE in config else trainer.train_examples
        return [head.weight, head.bias], weight, {}

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict]:
        from edge_agent.federation.site_trainer import SiteTrainer

        with refusals_audited(self.data, "evaluate"):
            trainer = SiteTrainer.open(
                self.data, embed_training=False, backbone=str(config.get(BACKBONE_PIN, ""))
            )
            loss, accuracy, count = trainer.evaluate(parameters)
        metrics = {
            "accuracy": accuracy,
            "production_version": trainer.production_version,
            "newest_version": trainer.newest_version,
        }
        return loss, count, metrics


@contextmanager
def refusals_audited(data: Path, step: str) -> Iterator[None]:
    """A round this site refuses (another model, a wrong shape) is audited here with its reason."""
    from genba.errors import GenbaError

    try:
        yield
    except GenbaError as error:
        from edge_agent.site import SiteFolder
        from edge_agent.store import SiteStore

        with SiteStore(SiteFolder(data).store_file) as store:
            store.append_audit("federated_round_refused", "federation", {"step": step, "reason": str(error)})
        raise


def benchmark_update(parameters: list[np.ndarray]) -> list[np.ndarray]:
    """``bench/federated.py``: the global tensors moved a little, as a training step would move them.

    Only a SuperNode joined for a benchmark (``GENBA_FEDERATION_BENCH=1``, set by the site, never
    by the server) answers such a round; the site's data is not touched.
    """
    if os.environ.get(BENCH_ENV) != "1":
        raise PermissionError("this site was not joined for a benchmark; it trains only on its labels")
    rng = np.random.default_rng(0)
    return [p + rng.normal(0.0, 1e-3, size=p.shape).astype(p.dtype) for p in parameters]


def client_fn(context: Any) -> Any:
    return SiteClient(site_data(context)).to_client()


def site_data(context: Any) -> Path:
    data = context.node_config.get("data")
    simulated = os.environ.get(SIMULATED_SITES_ENV)
    if not data and simulated and "partition-id" in context.node_config:  # genba simulate
        return Path(simulated) / f"sim-{int(context.node_config['partition-id']):03d}"
    if not data:
        raise ValueError(
            "this SuperNode was started without node config data=SITE_FOLDER; use 'genba agent join'"
        )
    return Path(str(data))


def bundle_delivery_mod(msg: Message, context: Any, call_next: Any) -> Message:
    """A delivered bundle (no training round) is installed here; everything else passes on."""
    from genba.protocol import DELIVERY_MESSAGE_TYPE

    if msg.metadata.message_type != DELIVERY_MESSAGE_TYPE:
        return call_next(msg, context)
    from flwr.app import ConfigRecord, RecordDict

    from edge_agent.federation.delivery import receive_bundle

    receipt = receive_bundle(site_data(context), plain_content(msg.content))
    return Message(RecordDict({"bundle_receipt": ConfigRecord(receipt)}), reply_to=msg)


def secure_aggregation_mod(msg: Message, context: Any, call_next: Any) -> Message:
    """Flower's ``secaggplus_mod``; a training message outside SecAgg+ is refused with one line,
    except at a SuperNode joined for a benchmark, which answers it with a plain update."""
    is_train = msg.metadata.message_type == "train" and msg.has_content()
    if is_train and "secaggplus_configs" not in msg.content.config_records:
        if os.environ.get(BENCH_ENV) == "1":
            return call_next(msg, context)
        raise PermissionError("this site sends model updates only under secure aggregation (SecAgg+)")
    return secaggplus_mod(msg, context, call_next)


def dp_clipping_mod(msg: Message, context: Any, call_next: Any) -> Message:
    """Under a DP run, Flower's ``fixedclipping_mod`` clips this site's update before it is masked."""
    if DP_NOISE not in _fit_config(msg):
        return call_next(msg, context)
    from flwr.client.mod import fixedclipping_mod

    return fixedclipping_mod(msg, context, call_next)


def _fit_config(msg: Message) -> Any:
    if msg.metadata.message_type != "train" or not msg.has_content():
        return {}
    return msg.content.config_records.get("fitins.config") or {}


def _privacy_details(msg: Message) -> dict[str, Any]:
    """The DP settings and the run's epsilon after this round, as the server announced them."""
    config = _fit_config(msg)
    if DP_NOISE not in config:
        return {}
    return {
        "differential_privacy": {
            "noise_multiplier": float(config[DP_NOISE]),
            "clipping_norm": float(config["dp-clip"]),
            "delta": float(config["dp-delta"]),
            "epsilon": float(config["dp-epsilon"]),
        }
    }


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
        kind = check_outgoing(content, allow_unmasked=os.environ.get(BENCH_ENV) == "1")
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
            details=_privacy_details(msg) if kind == "masked_update" else None,
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


app = ClientApp(
    client_fn=client_fn,
    mods=[egress_ledger_mod, bundle_delivery_mod, secure_aggregation_mod, dp_clipping_mod],
)
