"""IT side: pretrained model → ONNX → variants → gates → signed bundle.

Public surface::

    from export import ExportConfig, export_model            # a Hugging Face model directory
    from export import from_torch, ImagePreprocessing, TextPreprocessing   # a plain torch module

Heavy libraries (torch, transformers, optimum) are imported only when a
function that needs them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from export.config import ExportConfig, GateConfig, Tolerance

if TYPE_CHECKING:
    from export.pipeline import ExportResult, export_model
    from export.torch_module import ImagePreprocessing, TextPreprocessing, from_torch

__all__ = [
    "ExportConfig",
    "ExportResult",
    "GateConfig",
    "ImagePreprocessing",
    "TextPreprocessing",
    "Tolerance",
    "export_model",
    "from_torch",
]

_LAZY = {
    "ExportResult": "export.pipeline",
    "export_model": "export.pipeline",
    "from_torch": "export.torch_module",
    "ImagePreprocessing": "export.torch_module",
    "TextPreprocessing": "export.torch_module",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
