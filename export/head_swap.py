"""A head swap: a parent bundle with a new ``head.onnx``, a new version and lineage, signed anew.

Only the head graph changes: the backbone, the preprocessing and the reference statistics are
the parent's, byte for byte. Site training signs its candidates with the site key; the
federated server signs global bundles with IT's key. The bundle is staged and renamed into
place by ``genba.bundle.BundleWriter``, so nothing appears at ``out`` unless all of it was written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from export import graphs
from export.graphs import HeadWeights
from export.manifest import lineage, timestamp
from genba.bundle import (
    MANIFEST_NAME,
    BundleWriter,
    Lineage,
    Manifest,
    ModelInfo,
    VerifiedBundle,
    sha256_file,
)
from genba.errors import ExportError, IntegrityError, UsageError
from genba.runtime.config import RuntimeConfig
from genba.runtime.sessions import create_session
from genba.versions import ModelVersion

#: Largest |logit| difference between ONNX Runtime running the written head and numpy.
HEAD_CHECK_TOLERANCE = 1e-3


class NotHeadSwappableError(UsageError):
    def __init__(self, layout: Sequence[str]) -> None:
        super().__init__(
            f"the production model is one graph ({', '.join(layout)}), not backbone + head: "
            "site training (head or last-k) and federated training need a two-graph bundle: "
            "ask IT to re-export it split"
        )


def head_file(manifest: Manifest) -> str:
    """The head graph's file name; refuses any layout but backbone + head."""
    layout = manifest.graphs
    if set(layout) != {"backbone", "head"}:
        raise NotHeadSwappableError(sorted(layout))
    return layout["head"].file


def backbone_sha256(manifest: Manifest) -> str:
    """The SHA-256 of a two-graph bundle's backbone file: what its heads are trained on."""
    layout = manifest.graphs
    if "backbone" not in layout:
        raise NotHeadSwappableError(sorted(layout))
    return manifest.files[layout["backbone"].file].sha256


def read_head(bundle: VerifiedBundle) -> HeadWeights:
    """The linear head of a backbone + head bundle."""
    import onnx

    path = bundle.path / head_file(bundle.manifest)
    weights = graphs.head_weights(onnx.load(str(path)))
    if weights is None:
        raise NotHeadSwappableError(["head (not a linear layer)"])
    return HeadWeights(weights.weight.astype(np.float32), weights.bias.astype(np.float32))


def parent_reference(parent: VerifiedBundle) -> dict[str, Any]:
    model = parent.manifest.model
    raw = (parent.path / MANIFEST_NAME).read_bytes()
    return {
        "name": model.name,
        **model.version.manifest_fields(),
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
    }


def write_head_swap(
    parent: VerifiedBundle,
    weights: HeadWeights,
    out: Path,
    signing_key: Ed25519PrivateKey,
    *,
    source: Mapping[str, Any],
    report_key: str,
    report: Mapping[str, Any],
    version: int | ModelVersion | None = None,
    lineage_fields: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    probe: np.ndarray | None = None,
) -> Manifest:
    """Write the swapped bundle at ``out``; returns its final manifest (hashes and signer included).

    ``source`` is the lineage's source (what made the head); ``report`` is kept in the manifest's
    validation under ``report_key``. ``version`` (an int is IT's release) defaults to the parent's
    release + 1; a site passes its own revision (``genba.versions``). ``lineage_fields``
    sets the lineage's other fields (``federated_run``, ``round``, ``rollback``). ``probe`` (a few
    embeddings) is run through the written head with ONNX Runtime before the bundle is
    committed, so a head that does not load or compute what was fitted is never signed.
    """
    name = head_file(parent.manifest)
    labels = parent.manifest.labels or ()
    if weights.num_labels != len(labels):
        raise ExportError(
            f"the fitted head has {weights.num_labels} outputs but the model has {len(labels)} labels"
        )
    swapped = _swapped_manifest(parent, source, version, now, lineage_fields)
    with BundleWriter(out) as writer:
        _copy_files(parent, writer.root, skip=name)
        graphs.save(graphs.head_graph(weights, parent.manifest.opset), writer.root / name)
        checked = dict(report)
        if probe is not None and len(probe):
            checked["head_check_max_abs_diff"] = _check_head(writer.root / name, weights, probe)
        validation = {**(parent.manifest.validation or {}), report_key: checked}
        writer.commit(dataclasses.replace(swapped, validation=validation), signing_key)
        written = writer.manifest
    assert written is not None
    return written


def reissue(
    parent: VerifiedBundle,
    out: Path,
    signing_key: Ed25519PrivateKey,
    *,
    source: Mapping[str, Any],
    version: int,
    lineage_fields: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Manifest:
    """``parent``'s files, byte for byte, under a new version and lineage (a rollback, for one)."""
    reissued = _swapped_manifest(parent, source, ModelVersion(int(version)), now, lineage_fields)
    with BundleWriter(out) as writer:
        _copy_files(parent, writer.root, skip=None)
        writer.commit(reissued, signing_key)
        written = writer.manifest
    assert written is not None
    return written


def _copy_files(parent: VerifiedBundle, root: Path, skip: str | None) -> None:
    for listed in parent.manifest.files:
        if listed != skip:
            target = root / listed
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(parent.path / listed, target)
            _require_unchanged(parent, listed, target)


def _swapped_manifest(
    parent: VerifiedBundle,
    source: Mapping[str, Any],
    version: int | ModelVersion | None,
    now: dt.datetime | None,
    lineage_fields: Mapping[str, Any] | None,
) -> Manifest:
    """The parent's manifest under a new version and lineage (files and signer are the writer's)."""
    reference = parent_reference(parent)
    if not isinstance(version, ModelVersion):
        version = ModelVersion(reference["version"] + 1 if version is None else int(version))
    ancestry = {**lineage(dict(source), parent=reference), **(lineage_fields or {})}
    return dataclasses.replace(
        parent.manifest, model=_model_block(parent, version, now), lineage=Lineage.from_json(ancestry)
    )


def _model_block(parent: VerifiedBundle, version: ModelVersion, now: dt.datetime | None) -> ModelInfo:
    """The parent's model block under ``version``: a release drops the parent's revision."""
    inherited = {k: v for k, v in parent.manifest.model.to_json().items() if k != "revision"}
    return ModelInfo.from_json({**inherited, **version.manifest_fields(), "created_at": timestamp(now)})


def _require_unchanged(parent: VerifiedBundle, name: str, copy: Path) -> None:
    """The copy must be what the parent's signature covers: a signer must never sign a changed file."""
    if sha256_file(copy) != parent.manifest.files[name].sha256:
        raise IntegrityError(f"parent bundle file {name} changed while it was copied; nothing was written")


def _check_head(path: Path, weights: HeadWeights, probe: np.ndarray) -> float:
    session = create_session(path.read_bytes(), RuntimeConfig(provider="cpu", intra_op_threads=1))
    (logits,) = session.run(["logits"], {"embedding": np.ascontiguousarray(probe, dtype=np.float32)})
    expected = probe.astype(np.float64) @ weights.weight.T.astype(np.float64) + weights.bias.astype(
        np.float64
    )
    difference = float(np.max(np.abs(np.asarray(logits, dtype=np.float64) - expected)))
    if not difference <= HEAD_CHECK_TOLERANCE:
        raise ExportError(
            f"the written head does not compute the fitted head (max |diff| {difference:.3g}); "
            "nothing was written; report this as a bug"
        )
    return round(difference, 9)
