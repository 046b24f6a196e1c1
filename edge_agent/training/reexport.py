"""A last-k candidate: the fine-tuned model re-exported with its parent's exact precision, signed by the site.

The slow path of DESIGN's two-graph bundles: the backbone changed, so it goes through the
export pipeline again, the very variant the parent chose (``int8-per-channel`` stays
``int8-per-channel``) and the same gates against torch, with the site's training texts as
calibration and gate samples, handed over in memory (never written to a file). The site's
trained weights are kept beside the site store, keyed by the new backbone's hash, so the next
last-k training can start from this model. Nothing appears at ``out`` unless all of it passed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge_agent.site import SiteFolder
from edge_agent.training.candidate import CandidateSource, parent_reference
from edge_agent.training.last_k import FineTuned
from edge_agent.training.source import SourceModel, backbone_sha256, weights_dir, weights_file
from genba.bundle import Lineage, Manifest, Precision, VerifiedBundle
from genba.errors import BundleFormatError
from genba.versions import ModelVersion

#: Texts the export compares torch and ONNX on (and calibrates static int8 with).
GATE_SAMPLES = 64
_CALIBRATION_LIMIT = 128


def write_last_k_candidate(
    site: SiteFolder,
    parent: VerifiedBundle,
    source: SourceModel,
    tuned: FineTuned,
    out: Path,
    signing_key: Path,
    *,
    texts: Sequence[str],
    origin: CandidateSource,
    version: ModelVersion,
    report: Mapping[str, Any],
    threads: int = 0,
    now: dt.datetime | None = None,
) -> Manifest:
    """Export, gate, sign and write the candidate; then keep its trained weights. Returns its manifest."""
    from export.config import ExportConfig, GateConfig
    from export.pipeline import Examples, export_model
    from genba.inputs import Example

    site.training_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="last-k-", dir=site.training_dir) as work:
        model_dir = Path(work) / "model"
        source.model.save(str(model_dir))
        manifest = parent.manifest
        precision = _precision_of(manifest)
        max_length = manifest.input.max_length
        config = ExportConfig(
            model_dir=model_dir,
            task="text-classification",
            out=out,
            labels=tuple(manifest.labels or ()),
            precision=_precision(precision),
            variant=str(precision.variant),
            targets=_targets(manifest),
            signing_key=signing_key,
            name=str(manifest.model.name),
            version=version.release,
            revision=version.revision,
            max_length=128 if max_length is None else max_length,
            opset=manifest.opset,
            threads=threads,
            gates=replace(GateConfig(), sample_count=GATE_SAMPLES),
        )
        calibration = [Example(text=text) for text in texts[:_CALIBRATION_LIMIT]]
        staged = _stage_weights(site, parent, tuned)
        try:
            result = export_model(
                config,
                head=tuned.head,
                now=now,
                examples=Examples(calibration=calibration),
                amend=lambda written: _amend(written, parent, origin, report),
            )
            _keep_weights(site, staged, result.manifest)
        finally:
            staged.unlink(missing_ok=True)
    return result.manifest


def _targets(manifest: Manifest) -> tuple[str, ...]:
    """The parent's targets (a bundle from before variants: its one portable graph, as ``cpu``)."""
    from genba.variants import DEFAULT, variants_of

    names = tuple(name for name in variants_of(manifest) if name != DEFAULT)
    return names or ("cpu",)


def _precision_of(manifest: Manifest) -> Precision:
    if manifest.precision is None:
        raise BundleFormatError("the parent bundle lists no precision; ask IT to re-export it")
    return manifest.precision


def _precision(precision: Precision) -> Any:
    backbone = precision.backbone
    return backbone if backbone in ("fp32", "fp16", "int8", "int8-static") else "auto"


def _amend(
    manifest: Manifest, parent: VerifiedBundle, origin: CandidateSource, report: Mapping[str, Any]
) -> Manifest:
    """Lineage to the parent and the training report; the export's own gate figures stay as they are."""
    from export.manifest import lineage

    exported_from = manifest.lineage.source or {}
    ancestry = lineage({**origin.to_json(), "exported_from": exported_from}, parent=parent_reference(parent))
    validation = {**(manifest.validation or {}), "site_training": dict(report)}
    return replace(manifest, lineage=Lineage.from_json(ancestry), validation=validation)


def _stage_weights(site: SiteFolder, parent: VerifiedBundle, tuned: FineTuned) -> Path:
    """Everything this site has changed in the source: the parent's overlay plus what was just trained."""
    from safetensors.torch import load_file, save_file

    tensors: dict[str, Any] = {}
    inherited = weights_file(site, backbone_sha256(parent))
    if inherited.is_file():
        tensors.update(load_file(str(inherited)))
    tensors.update(tuned.trained)
    folder = weights_dir(site)
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".staged-", suffix=".safetensors", dir=folder)
    os.close(handle)
    save_file({k: v.contiguous() for k, v in tensors.items()}, name)
    return Path(name)


def _keep_weights(site: SiteFolder, staged: Path, manifest: Manifest) -> None:
    name = manifest.graphs["backbone"].file
    target = weights_file(site, manifest.files[name].sha256)
    if target.exists():
        staged.unlink()
        return
    shutil.move(str(staged), str(target))
