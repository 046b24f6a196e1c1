"""Runtime settings, one frozen dataclass validated as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genba.errors import ConfigError

ProviderPolicy = Literal["auto", "gpu", "cpu"]
GraphOptimization = Literal["disabled", "basic", "extended", "all"]
IoBinding = Literal["auto", "on", "off"]

PROVIDER_POLICIES: tuple[str, ...] = ("auto", "gpu", "cpu")
GRAPH_OPTIMIZATIONS: tuple[str, ...] = ("disabled", "basic", "extended", "all")
IO_BINDINGS: tuple[str, ...] = ("auto", "on", "off")


@dataclass(frozen=True)
class RuntimeConfig:
    """How ONNX Runtime sessions are made.

    ``intra_op_threads=0`` lets ONNX Runtime use one thread per physical core,
    which is what a dedicated shop-floor PC wants; tests and benchmarks pin it.

    ``io_binding``: ``auto`` binds inputs and outputs to the device when the
    active provider is CUDA (the embedding then stays on the GPU between
    backbone and head); ``on`` binds on CPU too (same results, no gain: it is
    there to exercise the path); ``off`` always uses plain ``session.run``.
    """

    provider: ProviderPolicy = "auto"
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    graph_optimization: GraphOptimization = "all"
    cuda_device_id: int = 0
    io_binding: IoBinding = "auto"
    spin_wait: bool = True
    #: Threads that tokenize a large text batch (16+ texts a thread); 1 = the caller's thread only;
    #: 0 = automatic: up to 8 where the model runs on CUDA (the CPU is otherwise idle: on an H200
    #: PC a 256-report batch took 2.9 ms on 8 threads, 6.7 ms on one), 1 on the CPU provider,
    #: whose cores ONNX Runtime already uses.
    tokenizer_threads: int = 0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.provider not in PROVIDER_POLICIES:
            problems.append(f"provider must be one of {', '.join(PROVIDER_POLICIES)}, not {self.provider!r}")
        if self.intra_op_threads < 0:
            problems.append("intra_op_threads must be >= 0 (0 = one per core)")
        if self.inter_op_threads < 1:
            problems.append("inter_op_threads must be >= 1")
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            problems.append(
                f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}, "
                f"not {self.graph_optimization!r}"
            )
        if self.cuda_device_id < 0:
            problems.append("cuda_device_id must be >= 0")
        if not 0 <= self.tokenizer_threads <= 64:
            problems.append("tokenizer_threads must be between 0 (automatic) and 64")
        if self.io_binding not in IO_BINDINGS:
            problems.append(f"io_binding must be one of {', '.join(IO_BINDINGS)}, not {self.io_binding!r}")
        if problems:
            raise ConfigError(problems)
