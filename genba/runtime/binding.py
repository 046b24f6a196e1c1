"""IO binding: inputs placed on the serving device once, the embedding kept there for the head.

With CUDA, a plain ``session.run`` copies every input host→device and every
output device→host per graph, so a split bundle's embedding makes a round trip
between backbone and head. Bound, the backbone writes the embedding into device
memory, the head reads that same OrtValue, and only what callers read (the
embedding and the logits) comes back to the host. On CPU the same path runs
(``io_binding="on"``), which saves nothing but lets tests exercise it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from genba.runtime.preprocess import Feeds

if TYPE_CHECKING:
    import onnxruntime

HOST = "cpu"


@dataclass(frozen=True)
class Placement:
    """Where bound inputs and the backbone's embedding live: ``cuda`` (with its device id) or ``cpu``."""

    device: str
    device_id: int = 0


def run_single(
    session: onnxruntime.InferenceSession, feeds: Feeds, placement: Placement
) -> dict[str, np.ndarray]:
    """One graph: inputs on the device, every output straight to the host (callers read them all)."""
    binding = session.io_binding()
    _bind_inputs(binding, feeds, placement)
    names = [output.name for output in session.get_outputs()]
    for name in names:
        binding.bind_output(name, HOST)
    session.run_with_iobinding(binding)
    return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))


def run_split(
    backbone: onnxruntime.InferenceSession,
    head: onnxruntime.InferenceSession | None,
    feeds: Feeds,
    placement: Placement,
) -> dict[str, np.ndarray]:
    """Backbone then head, handing the embedding over on the device without a host round trip."""
    binding = backbone.io_binding()
    _bind_inputs(binding, feeds, placement)
    binding.bind_output("embedding", placement.device, placement.device_id)
    backbone.run_with_iobinding(binding)
    # Copied to the host only because callers (drift, explanations, site training) read it;
    # the head is fed the device-side OrtValue itself.
    outputs = {"embedding": binding.copy_outputs_to_cpu()[0]}
    if head is not None:
        head_binding = head.io_binding()
        head_binding.bind_ortvalue_input("embedding", binding.get_outputs()[0])
        head_binding.bind_output("logits", HOST)
        head.run_with_iobinding(head_binding)
        outputs["logits"] = head_binding.copy_outputs_to_cpu()[0]
    return outputs


def _bind_inputs(binding: onnxruntime.IOBinding, feeds: Feeds, placement: Placement) -> None:
    import onnxruntime as ort

    for name, array in feeds.items():
        # On cpu the OrtValue wraps the array's own buffer (and keeps it alive); on cuda it is a copy.
        value = ort.OrtValue.ortvalue_from_numpy(
            np.ascontiguousarray(array), placement.device, placement.device_id
        )
        binding.bind_ortvalue_input(name, value)
