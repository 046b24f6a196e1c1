"""Preprocessing with tokenizers, numpy and Pillow only (no transformers on the serving path).

The bundle's manifest carries an ``input`` spec resolved at export time, so a
site never needs the Hugging Face processor classes to prepare inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from genba.errors import BundleFormatError, InputFileError

Feeds = dict[str, np.ndarray]


class Preprocessor(Protocol):
    def encode(self, items: Sequence[Any], pad_to: int | None = None) -> Feeds: ...


class TextPreprocessor:
    """Tokenize a batch; pad to the longest item, never to a fixed length unless asked."""

    def __init__(self, tokenizer_file: Path, spec: Mapping[str, Any]) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception subclass
            raise BundleFormatError(f"bundle tokenizer cannot be read: {exc}") from exc
        self.max_length = int(spec["max_length"])
        self.pad_id = int(spec["pad_id"])
        self.graph_inputs = tuple(spec["graph_inputs"])
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length)

    def encode(self, items: Sequence[Any], pad_to: int | None = None) -> Feeds:
        texts = [_as_text(item) for item in items]
        encodings = self._tokenizer.encode_batch(texts)
        width = pad_to or max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        types = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = min(len(encoding.ids), width)
            ids[row, :n] = encoding.ids[:n]
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids[:n]
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: available[name] for name in self.graph_inputs}


class ImagePreprocessor:
    """Resize, rescale and normalize to channels-first float32, as the model's processor did."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.height = int(spec["height"])
        self.width = int(spec["width"])
        self.rescale_factor = float(spec["rescale_factor"])
        self.mean = np.asarray(spec["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(spec["std"], dtype=np.float32).reshape(3, 1, 1)
        self.resample = int(spec.get("resample", 2))
        self.graph_inputs = tuple(spec["graph_inputs"])

    def encode(self, items: Sequence[Any], pad_to: int | None = None) -> Feeds:
        del pad_to  # images are resized to one size; nothing to pad
        batch = np.stack([self._one(item) for item in items]).astype(np.float32)
        return {self.graph_inputs[0]: batch}

    def _one(self, item: Any) -> np.ndarray:
        from PIL import Image

        image = _open_image(item).convert("RGB")
        image = image.resize((self.width, self.height), resample=Image.Resampling(self.resample))
        array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) * self.rescale_factor
        return (array - self.mean) / self.std


def preprocessor_for(root: Path, spec: Mapping[str, Any]) -> Preprocessor:
    kind = spec.get("kind")
    if kind == "text":
        return TextPreprocessor(root / spec["tokenizer"], spec)
    if kind == "image":
        return ImagePreprocessor(spec)
    raise BundleFormatError(f"bundle input kind {kind!r} is not supported (text or image)")


def _as_text(item: Any) -> str:
    if not isinstance(item, str):
        raise InputFileError(f"a text model needs text input, got {type(item).__name__}")
    return item


def _open_image(item: Any) -> Any:
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        return Image.fromarray(item.astype(np.uint8))
    try:
        return Image.open(Path(item))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputFileError(f"cannot read image {item}: {exc}") from exc
