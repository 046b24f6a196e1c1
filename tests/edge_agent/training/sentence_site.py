"""The tiny sentence-transformers site that last-k and contrastive training tests share: its labels,
and checks on what a training job wrote (loaded by path through the ``sentence_site`` fixture)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from edge_agent.training.source import WEIGHTS_SUFFIX, load_sentence_model
from genba.bundle import verify_directory
from genba.runtime.config import RuntimeConfig
from genba.runtime.model import BundleModel

LABELS = ("ok", "scratch", "dent")
PHRASES = {"scratch": "scratch on the {}", "dent": "dent near the {}", "ok": "good {} part ok"}
PLACES = ("housing", "bracket", "rim", "flange", "gasket", "clip")
TRAIN = [(PHRASES[label].format(place), label, "train") for label in LABELS for place in PLACES]
HOLDOUT = [
    (PHRASES[label].format(place), label, "holdout") for label in LABELS for place in ("screw", "line")
]
FAST = {"last_k": 1, "max_epochs": 4, "patience": 2, "learning_rate": 1e-3, "batch_size": 8}


def label_texts(agent: Agent, labelled: Sequence[tuple[str, str, str]]) -> None:
    answers = agent.predict([Item(kind="text", value=text, raw=text.encode()) for text, _, _ in labelled])
    for answer, (_, label, split) in zip(answers, labelled, strict=True):
        agent.store.add_label(answer.input_id, label, actor="operator", split=split)


def production_dir(site: SiteFolder) -> Path:
    with SiteStore.read_only(site.store_file) as store:
        production = store.slots().production
        assert production is not None
        return site.models_dir / store.get_model(production.model_id).path


def leftovers(site: SiteFolder) -> list[str]:
    """Anything in the training folder but kept weights (no scratch model, no staged file)."""
    if not site.training_dir.exists():
        return []
    return sorted(
        str(p.relative_to(site.training_dir))
        for p in site.training_dir.rglob("*")
        if not (p.is_dir() and p.name == "weights")
        and not (p.parent.name == "weights" and p.suffix == WEIGHTS_SUFFIX and not p.name.startswith("."))
    )


def embeddings(bundle: Path, texts: list[str]) -> np.ndarray:
    model = BundleModel(verify_directory(bundle, None), RuntimeConfig(provider="cpu", intra_op_threads=1))
    return np.asarray(model.run(texts)["embedding"])


def torch_embeddings(source: Path, weights: Path | None, bundle: Path, texts: list[str]) -> np.ndarray:
    import torch
    from safetensors.torch import load_file

    model = load_sentence_model(source)
    if weights is not None:
        model.load_state_dict(load_file(str(weights)), strict=False)
    feeds = BundleModel(verify_directory(bundle, None), RuntimeConfig(provider="cpu")).preprocessor.encode(
        texts
    )
    with torch.inference_mode():
        return model({k: torch.from_numpy(v) for k, v in feeds.items()})["sentence_embedding"].numpy()
