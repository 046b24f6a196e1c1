"""ONNX Runtime sessions with an explicit provider policy.

``auto`` uses the CUDA provider only when it really loads (ONNX Runtime would
otherwise fall back to CPU silently) and says which provider is active;
``gpu`` refuses to start without CUDA; ``cpu`` never tries it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from genba import env as _env  # noqa: F401  (telemetry off before onnxruntime is imported)
from genba.errors import ProviderUnavailableError, RuntimeLoadError
from genba.runtime.config import RuntimeConfig

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def gpu_visible() -> bool:
    """Cheap check before trying CUDA: a driver device node must exist."""
    return Path("/dev/nvidiactl").exists() or Path("/dev/dxg").exists()


def session_options(config: RuntimeConfig, profile_prefix: str | None = None) -> onnxruntime.SessionOptions:
    """Session options every Genba session shares, each one chosen on purpose.

    - ``intra_op_num_threads`` from the config: the threads one operator
      (a MatMul) may use; 0 = one per physical core, pinned in tests and
      benchmarks so figures are comparable.
    - ``inter_op_num_threads`` from the config (default 1) with
      ``ORT_SEQUENTIAL`` execution: encoder graphs are one chain of layers, so
      running independent nodes in parallel gains nothing and would compete
      with the intra-op threads for the same few cores (sequential mode does
      not use the inter-op pool at all).
    - ``graph_optimization_level`` from the config (default ``all``: fusions
      such as attention and LayerNorm are where ORT's CPU speed comes from).
    - ``enable_mem_pattern`` and ``enable_cpu_mem_arena`` at ORT's defaults
      (on), set explicitly so the choice is visible; see the comments below.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _OPTIMIZATION_LEVELS[config.graph_optimization]
    )
    # Memory patterns plan buffer reuse once per input shape and replay the plan; batches padded to
    # their own longest item bring new shapes now and then, which only costs a fresh plan. The usual
    # reasons to turn it off (DirectML, graph capture) do not apply; nothing measured says otherwise.
    options.enable_mem_pattern = True
    # The CPU arena keeps freed blocks for the next run, so steady serving does no malloc per request.
    # What it holds is bounded by the largest batch's activations (MiniLM, batch 32 x 128 tokens: tens
    # of MB, mostly attention scores), a fair price on a dedicated PC; nothing measured says otherwise.
    options.enable_cpu_mem_arena = True
    # Errors only: a failed CUDA attempt under "auto" is expected on CPU-only PCs.
    # ONNX Runtime's worker threads spin after each run waiting for the next one. That
    # helps a tight loop of runs (export, benchmarks) but on a small PC serving HTTP
    # they burn the cores the request handling needs, so the agent turns it off.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.spin_wait else "0")
    options.log_severity_level = 3
    if profile_prefix is not None:
        # One profiled run tells where ORT placed each node (genba.runtime.placement); the caller
        # ends profiling right after it, so serving never pays for it.
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def cuda_possible(config: RuntimeConfig) -> bool:
    """Whether the policy would try CUDA at all (``cpu``, or ``auto`` with no GPU device, never does)."""
    return config.provider == "gpu" or (config.provider == "auto" and gpu_visible())


def create_session(
    model: bytes | Path, config: RuntimeConfig, profile_prefix: str | None = None
) -> onnxruntime.InferenceSession:
    """A session on the provider the policy allows; raises RuntimeLoadError otherwise.

    ``profile_prefix`` turns profiling on for a CUDA session (see ``genba.runtime.placement``).
    """
    if not cuda_possible(config):
        return _session(model, config, [CPU])
    session = _try_cuda(model, config, profile_prefix)
    if session is not None:
        return session
    if config.provider == "gpu":
        raise ProviderUnavailableError(
            "provider 'gpu' requested but the CUDA execution provider did not load "
            "(check the NVIDIA driver and onnxruntime-gpu); use --provider auto or cpu to run on CPU"
        )
    log.info("CUDA execution provider unavailable; serving on CPU")
    return _session(model, config, [CPU])


def active_provider(session: onnxruntime.InferenceSession) -> str:
    providers = session.get_providers()
    return CUDA if CUDA in providers else providers[0]


def _try_cuda(
    model: bytes | Path, config: RuntimeConfig, profile_prefix: str | None = None
) -> onnxruntime.InferenceSession | None:
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return None
    try:
        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:
            preload()
        cuda_options = {"device_id": str(config.cuda_device_id)}
        session = _session(model, config, [(CUDA, cuda_options), CPU], profile_prefix)
    except (RuntimeError, OSError, ValueError) as exc:  # ORT raises plain RuntimeError subclasses
        log.info("CUDA provider failed to load: %s", exc)
        return None
    return session if CUDA in session.get_providers() else None


def _session(
    model: bytes | Path, config: RuntimeConfig, providers: list[object], profile_prefix: str | None = None
) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else os.fspath(model)
    options = session_options(config, profile_prefix)
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise RuntimeLoadError(f"ONNX Runtime cannot load the model: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
