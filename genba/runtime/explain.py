"""Why a model answered as it did, computed on the ONNX model alone: occlusion.

Text: each word is left out in turn; its weight is how much the answered label's probability
drops without it (negative: the word argued against the answer). A text of more than
:data:`MAX_VARIANTS` words is cut into that many contiguous spans instead, each left out in turn,
and each word gets its span's drop shared out evenly, so a long report costs no more than a
:data:`MAX_VARIANTS`-word one. Images: a grid of patches is
greyed out in turn (the image's mean colour) at the size the model sees it (its preprocessing
resizes every image to one size), so a 40 MP photo costs what a thumbnail does; the heat map is the
drop for each patch. All
variants run as one batch through the same sessions that serve, so an explanation costs about
one batched prediction and needs no gradients, no torch and nothing from outside the bundle.
Inputs are bounded (:data:`MAX_WORDS` words) and so are the variants, so an explanation's time is too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from genba.errors import UsageError
from genba.runtime.model import BundleModel

#: The longest text (in words) explained; longer inputs are refused with a clear message.
MAX_WORDS = 128
#: The most variants one text explanation runs (one per word up to this many words, else spans).
MAX_VARIANTS = 32
#: Patches per side of the image occlusion grid.
IMAGE_GRID = 8


class ExplanationTooLongError(UsageError):
    def __init__(self, words: int) -> None:
        super().__init__(
            f"the input has {words} words; explanations cover at most {MAX_WORDS}: "
            "explain a shorter excerpt of it"
        )


@dataclass(frozen=True)
class Explanation:
    label: str
    score: float
    method: str
    #: Text: each word with its weight, in the input's order.
    words: tuple[tuple[str, float], ...] = ()
    #: Images: IMAGE_GRID x IMAGE_GRID drops in probability, row by row.
    heatmap: tuple[tuple[float, ...], ...] = ()
    ms: float = 0.0

    def ranked_words(self) -> list[tuple[str, float]]:
        return sorted(self.words, key=lambda word: -word[1])

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "label": self.label,
            "score": round(self.score, 6),
            "method": self.method,
            "ms": round(self.ms, 1),
        }
        if self.words:
            document["words"] = [{"text": w, "weight": round(v, 6)} for w, v in self.words]
        if self.heatmap:
            document["heatmap"] = [[round(v, 6) for v in row] for row in self.heatmap]
        return document


def explain(model: BundleModel, item: Any, kind: str) -> Explanation:
    """Occlusion attribution for one input of a classifier bundle."""
    if not model.is_classifier:
        raise UsageError("only classifiers' answers can be explained; this bundle outputs embeddings")
    started = time.perf_counter()
    if kind == "text":
        explanation = _explain_text(model, str(item))
    elif kind == "image":
        explanation = _explain_image(model, item)
    else:
        raise UsageError(f"cannot explain a {kind!r} input (text or image)")
    return Explanation(**{**explanation.__dict__, "ms": (time.perf_counter() - started) * 1000.0})


def _explain_text(model: BundleModel, text: str) -> Explanation:
    words = text.split()
    if not words:
        raise UsageError("the input is empty: there is nothing to explain")
    if len(words) > MAX_WORDS:
        raise ExplanationTooLongError(len(words))
    spans = [list(span) for span in np.array_split(np.arange(len(words)), min(len(words), MAX_VARIANTS))]
    variants = [" ".join(w for i, w in enumerate(words) if i not in set(span)) for span in spans]
    probabilities = _probabilities(model, [text, *variants])
    best = int(np.argmax(probabilities[0]))
    drops = probabilities[0, best] - probabilities[1:, best]
    weights = np.zeros(len(words))
    for span, drop in zip(spans, drops, strict=True):
        weights[span] = drop / len(span)
    widest = max(len(span) for span in spans)
    method = (
        "occlusion (leave one word out)"
        if widest == 1
        else f"occlusion (leave out spans of up to {widest} words)"
    )
    return Explanation(
        label=model.labels[best],
        score=float(probabilities[0, best]),
        method=method,
        words=tuple((word, float(weight)) for word, weight in zip(words, weights, strict=True)),
    )


def _explain_image(model: BundleModel, item: Any) -> Explanation:
    image = _as_the_model_sees_it(model, item)
    pixels = np.asarray(image, dtype=np.uint8)
    fill = pixels.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    rows = np.linspace(0, pixels.shape[0], IMAGE_GRID + 1).astype(int)
    cols = np.linspace(0, pixels.shape[1], IMAGE_GRID + 1).astype(int)
    variants = []
    for r in range(IMAGE_GRID):
        for c in range(IMAGE_GRID):
            occluded = pixels.copy()
            occluded[rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = fill
            variants.append(_image(occluded))
    probabilities = _probabilities(model, [image, *variants])
    best = int(np.argmax(probabilities[0]))
    drops = (probabilities[0, best] - probabilities[1:, best]).reshape(IMAGE_GRID, IMAGE_GRID)
    return Explanation(
        label=model.labels[best],
        score=float(probabilities[0, best]),
        method=f"occlusion ({IMAGE_GRID}x{IMAGE_GRID} patches greyed out)",
        heatmap=tuple(tuple(float(v) for v in row) for row in drops),
    )


def _as_the_model_sees_it(model: BundleModel, item: Any) -> Any:
    """The image resized as the model's preprocessing resizes it (that resize is then a no-op), so the
    64 occluded copies are of the model's input size, never of the original's."""
    from PIL import Image

    from genba.images import rgb_image
    from genba.runtime.preprocess import ImagePreprocessor

    image = rgb_image(item)
    preprocessor = model.preprocessor
    if not isinstance(preprocessor, ImagePreprocessor):
        return image
    size = (preprocessor.width, preprocessor.height)
    if image.size == size:
        return image
    return image.resize(size, resample=Image.Resampling(preprocessor.resample))


def _image(pixels: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(pixels, mode="RGB")


def _probabilities(model: BundleModel, items: list[Any]) -> np.ndarray:
    probabilities, _, _ = model.predict_arrays(items)
    assert probabilities is not None
    return np.asarray(probabilities, dtype=np.float64)
