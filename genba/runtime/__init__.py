"""The one ONNX Runtime layer: sessions, providers and preprocessing.

Export's gates, ``genba predict`` and the agent's serving all run bundles
through this package, so what was validated is what is served. It imports
onnxruntime, numpy, tokenizers and Pillow, never torch or transformers.
"""

from genba.runtime.config import RuntimeConfig
from genba.runtime.model import BundleModel, GraphSet, Prediction

__all__ = ["BundleModel", "GraphSet", "Prediction", "RuntimeConfig"]
