"""The site's ClientApp: head training on the site store, secure aggregation, and the egress ledger.

The site's pinned ClientApp process (:mod:`edge_agent.federation.pinned_clientapp`) imports this
module once and serves every message with it; the trainer (ONNX Runtime, torch) loads inside
``fit`` and ``evaluate``, and stays loaded.

* ``fit``: the global head arrives; the site fits its head on its own training labels over
  embeddings cached from its production backbone, starting from (and pulled toward) the
  global head, and returns the new head with its example count. ``secaggplus_mod`` masks it.
* ``evaluate``: the global head's loss and accuracy on the site's held-out labels.
* ``bundle_delivery_mod``: a signed bundle IT delivers (``genba server publish``, ``rollback``
  or the end of a run) is verified and installed as the candidate; only a receipt goes back.
* ``privacy_floor_mod`` (just outside SecAgg+, :mod:`edge_agent.federation.floor`): the site
  refuses, and audits, a SecAgg+ stage below the privacy floor: a setup with fewer than 3
  sampled sites, an unmask request while fewer than 3 sites are named alive (or one named both
  alive and dropped), so no share it holds helps unmask a sum of fewer than 3 sites.
* ``secure_aggregation_mod``: Flower's ``secaggplus_mod`` with Genba's masks (ChaCha20 from the
  whole seed, :mod:`genba.masking`), the masked update sent as uint32; a training message outside
  SecAgg+ is refused (only a SuperNode joined for ``bench/federated.py`` answers it, unmasked).
* ``dp_clipping_mod`` (innermost, so it clips before SecAgg+ masks): in a differentially
  private run, Flower's ``fixedclipping_mod`` clips the site's update to the run's norm; the
  ledger entry of the masked update records the DP settings and the run's epsilon.
* ``distributed_noise_mod`` (between the two, :mod:`edge_agent.federation.dp`): in a DP run, the
  site checks the settings and its lifetime ε budget, then adds its share of the Gaussian noise to
  the clipped update, so SecAgg+ masks a noised one; a round it declines is audited.
* ``egress_ledger_mod`` (outermost, so it sees exactly what leaves, after masking): every reply
  must match a shape in :mod:`genba.protocol` and is appended to the site's egress ledger
  (destination, kind, payload bytes, round, SHA-256 of its content); a reply that does not match
  is replaced by an error that carries nothing of it. An exception anywhere inside, or an error
  reply from an inner mod, becomes an error with a code from ``genba.protocol.ERROR_REASONS`` and
  that code's fixed reason, checked and ledgered like any reply; its real cause goes to the site's
  audit log only. Nothing leaves the ClientApp any other way.

The site folder comes from the SuperNode's node config (``data="/path"``), set by
``genba agent join``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import Error, Message
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from edge_agent.federation.dp import distributed_noise_mod
from edge_agent.federation.floor import privacy_floor_mod
from edge_agent.federation.node import site_data
from genba.masking import MASKED_RECORD, narrow_masked, use_genba_masks

log = logging.getLogger(__name__)
#: The reply this thread ledgered last: an egress mod around another that already ledgered it lets it
#: pass (an approved app that wraps Genba's ClientApp), rather than ledgering it twice.
_LEDGERED = threading.local()
#: Set by a SuperNode joined for a benchmark: answers benchmark rounds, may send unmasked updates.
BENCH_ENV = "GENBA_FEDERATION_BENCH"
#: In a benchmark round's fit config: each site sends its own update (``bench/federated.py``).
BENCH_PER_SITE = "bench-per-site"
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
            site = self.data.name if config.get(BENCH_PER_SITE) else None
            return benchmark_update(parameters, site), 1, {}

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


def benchmark_update(parameters: list[np.ndarray], site: str | None = None) -> list[np.ndarray]:
    """``bench/federated.py``: the global tensors moved a little, as a training step would move them.

    In float32, as a site's trained tensors are. The same for every site unless ``site`` is named
    (the benchmark's rounds: distinct updates, as real sites send, which Flower's object store cannot
    de-duplicate). Only a SuperNode joined for a benchmark (``GENBA_FEDERATION_BENCH=1``, set by the
    site, never by the server) answers such a round; the site's data is not touched.
    """
    import hashlib

    if os.environ.get(BENCH_ENV) != "1":
        raise PermissionError("this site was not joined for a benchmark; it trains only on its labels")
    seed = 0 if site is None else int.from_bytes(hashlib.sha256(site.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    return [(p + rng.normal(0.0, 1e-3, size=p.shape)).astype(np.float32) for p in parameters]


def client_fn(context: Any) -> Any:
    return SiteClient(site_data(context)).to_client()


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
    use_genba_masks()
    return _narrowed(secaggplus_mod(msg, context, call_next))


def _narrowed(reply: Message) -> Message:
    """The masked update as uint32 arrays in the ArrayRecord ``MASKED_RECORD`` instead of int64 blobs
    in SecAgg+'s ConfigRecord (:mod:`genba.masking`); any other reply as it is."""
    from flwr.app import ArrayRecord, ConfigRecord

    if not reply.has_content() or RECORD_KEY_CONFIGS not in reply.content.config_records:
        return reply
    configs = dict(reply.content.config_records[RECORD_KEY_CONFIGS])
    if Key.MASKED_PARAMETERS in configs:
        arrays = narrow_masked(cast(list[bytes], configs.pop(Key.MASKED_PARAMETERS)))
        reply.content[RECORD_KEY_CONFIGS] = ConfigRecord(configs)
        reply.content[MASKED_RECORD] = ArrayRecord(arrays)
    return reply


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
    """Outermost mod: the reply, or an error from the fixed table, checked and ledgered; nothing else."""
    from genba.protocol import (
        ERROR_FAILED,
        ERROR_REASONS,
        ERROR_REFUSED_REPLY,
        ProtocolViolation,
        check_outgoing,
    )

    try:
        reply: Message = call_next(msg, context)
    except Exception as error:  # everything: what leaves is a code, never this exception's text
        return error_reply(msg, context, _error_code(error), cause=error)
    if getattr(_LEDGERED, "reply", None) is reply:  # a wrapping app's inner egress mod ledgered it
        return reply
    if reply.has_error():  # an inner mod answered with an error of its own: its reason stays here
        code = int(reply.error.code) if int(reply.error.code) in ERROR_REASONS else ERROR_FAILED
        return error_reply(msg, context, code, cause=f"error reply {reply.error.code}: {reply.error.reason}")
    content = plain_content(reply.content) if reply.has_content() else {}
    try:
        kind = check_outgoing(content, allow_unmasked=os.environ.get(BENCH_ENV) == "1")
    except ProtocolViolation as violation:
        log.error("%s", violation)
        _audit(context, "egress_refused", {"reason": str(violation)})
        return error_reply(msg, context, ERROR_REFUSED_REPLY)
    ledger_reply(msg, context, kind, content, _privacy_details(msg) if kind == "masked_update" else None)
    _LEDGERED.reply = reply
    return reply


def error_reply(
    msg: Message, context: Any, code: int, *, cause: BaseException | str | None = None
) -> Message:
    """The error reply this site sends for ``msg``: ``code`` and its fixed reason, checked and ledgered.

    ``cause`` (the exception, or what an inner mod answered) goes to the site's audit log, never
    into the reply; the log gets only the code and the exception's type.
    """
    from genba.protocol import ERROR_REASONS, check_error, error_content

    if cause is not None:
        what = type(cause).__name__ if isinstance(cause, BaseException) else "reply"
        log.error("answering message %s with error %d (%s)", msg.metadata.message_id, code, what)
        _audit(context, "federated_error_reply", {"code": code, "cause": what, "reason": str(cause)[:2000]})
    kind = check_error(code, ERROR_REASONS[code])
    ledger_reply(msg, context, kind, error_content(code), {"code": code})
    _LEDGERED.reply = Message(Error(code=code, reason=ERROR_REASONS[code]), reply_to=msg)
    return _LEDGERED.reply


def ledger_reply(
    msg: Message, context: Any, kind: str, content: dict[str, dict[str, Any]], details: dict[str, Any] | None
) -> None:
    """Append the reply to ``msg`` to the site's egress ledger (raises if it cannot: then nothing is sent)."""
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore
    from genba.protocol import content_sha256, payload_bytes

    with SiteStore(SiteFolder(site_data(context)).store_file) as store:
        store.append_egress(
            destination=str(context.node_config.get("superlink", "superlink")),
            kind=kind,
            payload_bytes=payload_bytes(content),
            content_sha256=content_sha256(content),
            round=_round(msg),
            details={
                **(details or {}),
                "run": str(msg.metadata.run_id),  # uint64: text, as SQLite holds int64
                "reply_to": msg.metadata.message_id,  # what it answers: how a failed delivery is marked
            },
        )


def _error_code(error: BaseException) -> int:
    """A refusal (the site's own checks: another model, the privacy floor, its ε budget) or a failure."""
    from genba.errors import GenbaError, StoreError
    from genba.protocol import ERROR_FAILED, ERROR_ROUND_REFUSED

    refused = isinstance(error, (GenbaError, PermissionError)) and not isinstance(error, StoreError)
    return ERROR_ROUND_REFUSED if refused else ERROR_FAILED


def _audit(context: Any, event: str, details: dict[str, Any]) -> None:
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore

    with SiteStore(SiteFolder(site_data(context)).store_file) as store:
        store.append_audit(event, "federation", details)


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
    mods=[
        egress_ledger_mod,
        bundle_delivery_mod,
        privacy_floor_mod,
        secure_aggregation_mod,
        distributed_noise_mod,
        dp_clipping_mod,
    ],
)
