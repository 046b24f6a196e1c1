"""Decoding pictures: one size limit and one-line errors that name the picture, for every caller.

``genba predict``, export's ``--eval``/``--calibration`` files, explanations and the agent's API
all decode through here, so a truncated file, corrupted data or a decompression bomb is refused
the same way everywhere: a :class:`~genba.errors.InputFileError` naming the picture and what to
do, never a bare ``OSError`` from the middle of a decode.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path
from typing import Any

from genba.errors import ImageTooLargeError, InputFileError

#: Decoded size limit: a small compressed file can expand to gigabytes of pixels.
MAX_IMAGE_PIXELS = 40_000_000

_FORMATS = "send a complete PNG, JPEG or another image file Pillow reads"
#: What Pillow's format plugins raise on a damaged or unsupported file (UnidentifiedImageError is an
#: OSError; a DDS file with unknown pixel format flags raises NotImplementedError from ``open``).
_UNDECODABLE = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    NotImplementedError,
    struct.error,
    IndexError,
    KeyError,
)


def open_image(source: Path | str | bytes, name: str) -> Any:
    """A fully decoded ``PIL.Image`` from a file path or a file's bytes.

    ``name`` begins each error's line: ``image photos/a.png``, ``the image``.

    The size is checked from the header before any pixel is decoded, and the whole picture
    is decoded here (``load``), so nothing fails later in ``convert`` or ``resize``.
    """
    from PIL import Image

    opened = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        image = Image.open(opened)  # reads the header only
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLargeError(_too_large(name, f"{width}x{height} pixels"))
        image.load()
    except Image.DecompressionBombError as exc:  # Pillow's own, larger limit, checked in open
        raise ImageTooLargeError(_too_large(name, _pixels_in(exc))) from exc
    except FileNotFoundError as exc:
        raise InputFileError(f"{name} not found; check the path") from exc
    except _UNDECODABLE as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(f"{name} cannot be decoded ({reason}); {_FORMATS}") from exc
    return image


def rgb_image(item: Any, name: str | None = None) -> Any:
    """``item`` (a path, a file's bytes, a ``PIL.Image`` or a uint8 array) as a decoded RGB picture."""
    import numpy as np
    from PIL import Image

    if isinstance(item, Image.Image):
        image = item
    elif isinstance(item, np.ndarray):
        image = Image.fromarray(item.astype(np.uint8))
    elif isinstance(item, str | Path | bytes):
        image = open_image(item, name or ("the image" if isinstance(item, bytes) else f"image {item}"))
    else:
        raise InputFileError(f"an image model needs an image input, got {type(item).__name__}")
    return image.convert("RGB")


def _too_large(name: str, size: str) -> str:
    return f"{name} is too large ({size}; the limit is {MAX_IMAGE_PIXELS:,} pixels); send a smaller picture"


def _pixels_in(error: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found.group(1)):,} pixels" if found else f"over {MAX_IMAGE_PIXELS:,} pixels"
