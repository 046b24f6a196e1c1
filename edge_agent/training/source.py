"""The torch model behind the production backbone, for last-k training: found, loaded, proven to match.

A bundle holds ONNX graphs, not torch weights, so last-k training starts from the source folder
IT exported (``[training] source_model``, by default the packaged all-MiniLM-L6-v2) plus, when
production was itself fine-tuned here, the weights that training left in
``DATA/training/weights/<backbone sha256>.safetensors``. Before any training the torch model
must compute what the production backbone computes on the site's own inputs (mean cosine at the
export gate of the backbone's precision); otherwise training would start from another model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.site import SiteFolder
from edge_agent.training.errors import (
    SiteWeightsMissingError,
    SourceMismatchError,
    SourceModelMissingError,
    UnsupportedSourceError,
)
from edge_agent.training_modes import ENCODER_MODES
from genba.bundle import VerifiedBundle
from genba.errors import GenbaError, IntegrityError
from genba.runtime.model import BundleModel

WEIGHTS_SUFFIX = ".safetensors"
_PROBE_BATCH = 32


@dataclass
class SourceModel:
    """A sentence-transformers model in eval mode whose embedding matches the production backbone."""

    path: Path
    model: Any
    blocks: Any  # the transformer blocks, bottom to top (a torch ModuleList)
    site_weights: Path | None
    mean_cosine: float

    def embed(self, feeds: Mapping[str, np.ndarray], device: Any = None) -> Any:
        """The pooled embedding, as a torch tensor with autograd wherever parameters require it."""
        return self.model(self.tensors(feeds, device))["sentence_embedding"]

    @staticmethod
    def tensors(feeds: Mapping[str, np.ndarray], device: Any = None) -> dict[str, Any]:
        """The preprocessing's arrays as torch tensors on ``device``: what the model and its losses take."""
        import torch

        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device or "cpu") for k, v in feeds.items()}


def weights_dir(site: SiteFolder) -> Path:
    return site.training_dir / "weights"


def weights_file(site: SiteFolder, backbone_sha256: str) -> Path:
    return weights_dir(site) / f"{backbone_sha256}{WEIGHTS_SUFFIX}"


def source_path(site: SiteFolder, config: TrainingConfig) -> Path:
    if not config.source_model:
        from export.default_model import pretrained_model_dir

        return pretrained_model_dir()
    path = Path(config.source_model).expanduser()
    return path if path.is_absolute() else site.root / path


def backbone_sha256(bundle: VerifiedBundle) -> str:
    from export.head_swap import backbone_sha256 as of_manifest

    return of_manifest(bundle.manifest)


def load_source(
    site: SiteFolder,
    config: TrainingConfig,
    parent: VerifiedBundle,
    serving: BundleModel,
    probe_texts: Sequence[str],
) -> SourceModel:
    """Load the source, apply this site's earlier fine-tuning, and check it against ``parent``."""
    path = source_path(site, config)
    if not path.is_dir():
        raise SourceModelMissingError(path)
    model = load_sentence_model(path)
    blocks = transformer_blocks(model, path)
    applied = _apply_site_weights(site, model, parent)
    cosine = _mean_cosine(model, serving, probe_texts)
    limit = _cosine_limit(parent)
    if not cosine >= limit:
        raise SourceMismatchError(path, cosine, limit)
    return SourceModel(path=path, model=model, blocks=blocks, site_weights=applied, mean_cosine=cosine)


def transformer_blocks(model: Any, path: Path) -> Any:
    """The encoder's block list (BERT-family ``encoder.layer``), or a clear refusal."""
    transformer = model[0] if len(model) else None
    auto_model = getattr(transformer, "auto_model", None)
    blocks = getattr(getattr(auto_model, "encoder", None), "layer", None)
    if blocks is None or not len(blocks):
        raise UnsupportedSourceError(path, "it has no encoder blocks (encoder.layer) to unfreeze")
    return blocks


def load_sentence_model(path: Path) -> Any:
    from export.onnx_export import load_torch_model
    from export.sources import inspect_model_dir

    try:
        source = inspect_model_dir(path, "feature-extraction")
    except GenbaError as error:
        raise UnsupportedSourceError(path, str(error)) from error
    if source.library != "sentence_transformers" or source.modality != "text":
        raise UnsupportedSourceError(path, "only sentence-transformers text models are supported")
    return load_torch_model(source, "feature-extraction")


def _apply_site_weights(site: SiteFolder, model: Any, parent: VerifiedBundle) -> Path | None:
    """Overlay what earlier last-k training here changed; refuse when production needs it and it is gone."""
    path = weights_file(site, backbone_sha256(parent))
    if not path.is_file():
        source = parent.manifest.lineage.source or {}
        if source.get("kind") == "site-training" and source.get("mode") in ENCODER_MODES:
            model_info = parent.manifest.model
            raise SiteWeightsMissingError(str(model_info.name), model_info.version, path)
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    known = set(model.state_dict())
    unknown = sorted(set(tensors) - known)
    if unknown:
        raise IntegrityError(f"{path} holds weights the source model does not have ({unknown[0]}, ...)")
    model.load_state_dict(tensors, strict=False)
    return path


def _mean_cosine(model: Any, serving: BundleModel, texts: Sequence[str]) -> float:
    import torch

    from export.validate import row_cosines

    cosines = []
    for start in range(0, len(texts), _PROBE_BATCH):
        batch = list(texts[start : start + _PROBE_BATCH])
        feeds = serving.preprocessor.encode(batch)
        onnx_embedding = serving.graphs.run_feeds(feeds)["embedding"]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        with torch.inference_mode():
            torch_embedding = model(tensors)["sentence_embedding"].float().numpy()
        if torch_embedding.shape != onnx_embedding.shape:
            return 0.0  # another model altogether (another embedding size)
        cosines.append(row_cosines(torch_embedding, onnx_embedding))
    return round(float(np.concatenate(cosines).mean()), 6)


def _cosine_limit(parent: VerifiedBundle) -> float:
    """The export gate for the backbone's precision: the same bar the bundle itself passed."""
    from export.config import GateConfig

    precision = parent.manifest.precision.backbone if parent.manifest.precision else "fp32"
    tolerances = GateConfig().tolerances
    return tolerances.get(precision, tolerances["int8"]).min_mean_cosine
