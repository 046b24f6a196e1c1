"""Dump the CUDA execution provider's kernel registry to JSON (run on a machine with a GPU).

``genba.runtime.placement`` predicts from this table which operators of a graph would fall back
to the CPU under CUDA, on machines without a GPU (IT's export PC, CI). The table is specific to
the onnxruntime-gpu version it was read from, which it records.

    python bench/cuda_kernels.py OUT.json WARM_MODEL.onnx

``WARM_MODEL`` is any small graph: a CUDA session is made on it first, so the provider is loaded
and initialised before the registry is read.

Reading the registry loads every provider library of onnxruntime-gpu, TensorRT's included; where
TensorRT is not installed (the device machine), ORT logs that it cannot load it and then crashes
(SIGSEGV). Stand-ins for ``libnvinfer.so.10`` and ``libnvonnxparser.so.10`` on
``LD_LIBRARY_PATH`` let the library load; nothing calls them. Each is a few functions returning
0/NULL (``createInferBuilder_INTERNAL``, ``createInferRefitter_INTERNAL``,
``createInferRuntime_INTERNAL``, ``getInferLibVersion``, ``getPluginRegistry``;
``createNvOnnxParser_INTERNAL``, ``createNvOnnxParserRefitter_INTERNAL``), built with
``gcc -shared -fPIC -Wl,-soname,libnvinfer.so.10``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from genba import env  # noqa: F401  (telemetry off before onnxruntime loads)

CUDA = "CUDAExecutionProvider"


def main() -> int:
    out, warm = Path(sys.argv[1]), Path(sys.argv[2])
    import onnxruntime as ort
    from onnxruntime.capi import _pybind_state as capi

    ort.preload_dlls()
    session = ort.InferenceSession(str(warm), providers=[CUDA, "CPUExecutionProvider"])
    if CUDA not in session.get_providers():
        raise SystemExit("the CUDA provider did not load")
    print("reading the kernel registry", file=sys.stderr, flush=True)
    kernels: dict[str, list[list[Any]]] = {}
    for kernel in capi.get_all_opkernel_def():
        if kernel.provider != CUDA:
            continue
        types = sorted(
            {
                t.removeprefix("tensor(").removesuffix(")")
                for allowed in kernel.type_constraints.values()
                for t in allowed
            }
        )
        since, until = kernel.version_range
        kernels.setdefault(f"{kernel.domain}|{kernel.op_name}", []).append([since, min(until, 10_000), types])
    table = {"onnxruntime": ort.__version__, "provider": CUDA, "kernels": dict(sorted(kernels.items()))}
    out.write_text(json.dumps(table, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        json.dumps({"ops": len(kernels), "kernels": sum(len(v) for v in kernels.values()), "file": str(out)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
