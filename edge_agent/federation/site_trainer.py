"""What a federated round does at a site: fit its head from the global one, or score the global one.

The same pieces as ``genba agent train --mode head``: the production bundle verified as the
agent verifies it, training labels only for fitting, held-out labels only for evaluating, and
embeddings from the production backbone cached in the site store (so only the first round
embeds). The global head must fit the production backbone (same embedding size and labels),
or the round is refused at this site with a one-line error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.config import load_agent_config
from edge_agent.library import ModelLibrary
from edge_agent.site import SiteFolder
from edge_agent.store import LabelledInput, SiteStore
from edge_agent.training.data import TrainingSet, training_set
from edge_agent.training.embeddings import backbone_key, cached_embeddings
from edge_agent.training.head import fit_head, score_head
from edge_agent.training.run import read_site, verified_parent
from export.graphs import HeadWeights
from genba.bundle import VerifiedBundle
from genba.errors import UsageError
from genba.runtime.model import BundleModel

HOLDOUT_SPLIT = "holdout"


@dataclass
class SiteTrainer:
    parent: VerifiedBundle
    model: BundleModel
    data: TrainingSet | None
    vectors: np.ndarray | None
    site: SiteFolder

    @classmethod
    def open(cls, data_dir: Path, *, embed_training: bool = True, backbone: str = "") -> SiteTrainer:
        """The site's production model (and embedded training labels); ``backbone`` (a SHA-256)
        refuses a run whose heads are trained on another backbone, before anything is embedded."""
        site = SiteFolder(Path(data_dir)).require_initialized()
        config = load_agent_config(site.config_file)
        runtime = dataclasses.replace(config.runtime, spin_wait=False)
        production, items = read_site(site)
        library = ModelLibrary(
            site.models_dir, site.trusted_keys(), runtime, site.site_public_key(), config.site
        )
        parent = verified_parent(site, library, production)
        if backbone:
            require_backbone(parent, backbone)
        model = BundleModel(parent, runtime)
        data, vectors = None, None
        if embed_training:
            data = training_set(items, model.labels, parent.manifest.input.kind)
            vectors = _embed(site, model, parent, data.items)
        return cls(parent=parent, model=model, data=data, vectors=vectors, site=site)

    @property
    def train_examples(self) -> int:
        return len(self.data) if self.data is not None else 0

    @property
    def production_version(self) -> int:
        return self.parent.manifest.model.release

    @property
    def newest_version(self) -> int:
        """The newest version of the production model's name this site holds (its own candidates too)."""
        name = self.parent.manifest.model.name
        with SiteStore.read_only(self.site.store_file) as store:
            versions = [row.version.release for row in store.list_models() if row.name == name]
        return max([self.production_version, *versions])

    def fit(self, parameters: Sequence[np.ndarray]) -> HeadWeights:
        assert self.data is not None and self.vectors is not None
        prior = self._head(parameters, self.vectors.shape[1])
        fit = fit_head(self.vectors, self.data.label_indices, len(self.data.labels), prior=prior)
        return fit.weights

    def evaluate(self, parameters: Sequence[np.ndarray]) -> tuple[float, float, int]:
        """(mean cross-entropy, accuracy, count) of the global head on this site's held-out labels."""
        with SiteStore.read_only(self.site.store_file) as store:
            items = store.labelled_inputs(HOLDOUT_SPLIT)
        index = {label: i for i, label in enumerate(self.model.labels)}
        known = [item for item in items if item.label in index]
        if not known:
            return 0.0, 0.0, 0
        vectors = _embed(self.site, self.model, self.parent, known)
        head = self._head(parameters, vectors.shape[1])
        targets = np.array([index[item.label] for item in known])
        accuracy, loss = score_head(head, vectors, targets)
        return loss, accuracy, len(known)

    def _head(self, parameters: Sequence[np.ndarray], dim: int) -> HeadWeights:
        labels = len(self.model.labels)
        if len(parameters) != 2:
            raise UsageError(
                f"the global update has {len(parameters)} tensors, not a head's 2 (weight, bias)"
            )
        weight, bias = (np.asarray(p, dtype=np.float32) for p in parameters)
        if weight.shape != (labels, dim) or bias.shape != (labels,):
            raise UsageError(
                f"the global head has shape {weight.shape} + {bias.shape}, but this site's production model "
                f"needs ({labels}, {dim}) + ({labels},): the sites run different models; "
                "ask IT to publish one"
            )
        return HeadWeights(weight, bias)


def require_backbone(parent: VerifiedBundle, sha256: str) -> None:
    """Refuse a run whose heads are trained on another backbone than the one this site serves."""
    from export.head_swap import backbone_sha256

    if backbone_sha256(parent.manifest) != sha256:
        model = parent.manifest.model
        raise UsageError(
            f"this site serves {model.name} v{model.release}, whose backbone is not the "
            "one this run trains heads for: the sites run different models; ask IT to publish the "
            "run's model to this site first"
        )


def _embed(
    site: SiteFolder, model: BundleModel, parent: VerifiedBundle, items: Sequence[LabelledInput]
) -> np.ndarray:
    with SiteStore(site.store_file) as store:
        return cached_embeddings(
            store, model, backbone_key(parent.manifest, model.variant), list(items)
        ).vectors
