"""Where a graph's nodes run: measured from an ONNX Runtime profile, or predicted from CUDA's kernels.

A CUDA session can hold nodes that ONNX Runtime placed on the CPU, for two reasons:

- by design, the small integer computations of shapes (``Shape``, ``Gather`` of a shape,
  ``Unsqueeze``, ``Reshape`` of a shape vector...): ORT keeps them on the CPU where they are cheap;
- because the CUDA provider has no kernel for the operator and these input types (``MatMulInteger``
  on uint8 activations, ``DynamicQuantizeLinear``, ``QAttention``): these are compute operators,
  whole layers of the model run on the CPU and data crosses the bus between them.

Only the second kind matters, so the check names compute operators on the CPU, never just "any
node". ``session.disable_cpu_ep_fallback`` cannot tell the two apart (it refuses both).

Measured placement (:func:`measure`) reads the profile of one real run: each node's event says
its provider, operator and output types. Predicted placement (:func:`predict`) checks each node of
a stored graph against the CUDA provider's kernel registry of the pinned onnxruntime-gpu,
recorded in ``cuda_kernels.json`` (dumped on a GPU machine by ``bench/gpu_serving.py``), so IT can
check a CUDA variant on a machine without a GPU and an agent can refuse a graph before loading it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
KERNEL_TABLE = Path(__file__).with_name("cuda_kernels.json")

#: Operators ORT may keep on the CPU to compute shapes. On the CPU they count as shape work only
#: when every output is an integer or boolean tensor; the same operator on float data is compute.
SHAPE_OPS = frozenset(
    {
        "Shape",
        "Size",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Reshape",
        "Concat",
        "Slice",
        "Cast",
        "Equal",
        "Where",
        "Not",
        "And",
        "Or",
        "Less",
        "Greater",
        "Range",
        "ConstantOfShape",
        "Expand",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "ReduceProd",
        "ReduceSum",
        "Max",
        "Min",
        "NonZero",
        "Transpose",
        "Identity",
        "Constant",
    }
)
_DATA_TYPES = frozenset({"float", "float16", "bfloat16", "double", "uint8", "int8", "uint16", "int16"})
_INDEX_TYPES = frozenset({"int64", "int32", "int16", "int8", "uint64", "uint32", "bool"})
#: ONNX TensorProto element types by number, as ORT's kernel registry names them.
_ELEMENT_TYPES = {
    1: "float",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "double",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}


@dataclass(frozen=True)
class NodePlace:
    """One node as ONNX Runtime placed (or would place) it."""

    name: str
    op_type: str
    provider: str
    output_types: tuple[str, ...] = ()

    @property
    def is_shape_work(self) -> bool:
        return (
            self.op_type in SHAPE_OPS and bool(self.output_types) and set(self.output_types) <= _INDEX_TYPES
        )


@dataclass(frozen=True)
class PlacementReport:
    """How many nodes run on the target provider and which operators do not."""

    target: str
    source: str  # "measured" (a profiled run) or "predicted" (the kernel registry)
    nodes: int
    on_target: int
    shape_on_cpu: Mapping[str, int] = field(default_factory=dict)
    compute_on_cpu: Mapping[str, int] = field(default_factory=dict)

    @property
    def compute_falls_back(self) -> bool:
        return bool(self.compute_on_cpu)

    @property
    def nodes_on_cpu(self) -> int:
        return self.nodes - self.on_target

    def describe(self) -> str:
        """The compute operators on the CPU, most frequent first: ``MatMulInteger x24, QAttention x6``."""
        ranked = sorted(self.compute_on_cpu.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{op} x{count}" for op, count in ranked)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": self.source,
            "nodes": self.nodes,
            "on_target": self.on_target,
            "nodes_on_cpu": self.nodes_on_cpu,
            "compute_ops_on_cpu": sum(self.compute_on_cpu.values()),
            "compute_on_cpu": dict(sorted(self.compute_on_cpu.items())),
            "shape_on_cpu": dict(sorted(self.shape_on_cpu.items())),
        }


def assess(nodes: Iterable[NodePlace], target: str, source: str) -> PlacementReport:
    """Count what runs on ``target``; split the rest into shape work and compute that fell back."""
    listed = list(nodes)
    elsewhere = [node for node in listed if node.provider != target]
    return PlacementReport(
        target=target,
        source=source,
        nodes=len(listed),
        on_target=len(listed) - len(elsewhere),
        shape_on_cpu=dict(Counter(node.op_type for node in elsewhere if node.is_shape_work)),
        compute_on_cpu=dict(Counter(node.op_type for node in elsewhere if not node.is_shape_work)),
    )


def merge(reports: Sequence[PlacementReport]) -> PlacementReport:
    """One report over several graphs (a backbone and its head)."""
    shape: Counter[str] = Counter()
    compute: Counter[str] = Counter()
    for report in reports:
        shape.update(report.shape_on_cpu)
        compute.update(report.compute_on_cpu)
    return PlacementReport(
        target=reports[0].target,
        source=reports[0].source,
        nodes=sum(r.nodes for r in reports),
        on_target=sum(r.on_target for r in reports),
        shape_on_cpu=dict(shape),
        compute_on_cpu=dict(compute),
    )


# -- measured --------------------------------------------------------------------------------------


def profiling_prefix() -> str:
    """Where a session writes its one profile: a private temporary folder, removed after reading."""
    return os.path.join(tempfile.mkdtemp(prefix="genba-placement-"), "profile")


def measured(sessions: Sequence[onnxruntime.InferenceSession], target: str) -> PlacementReport:
    """Where the nodes of sessions made with profiling on ran in their first run; ends profiling.

    Call it after one run of every session on real inputs (placement is decided when a session
    is made; the run only makes ORT write it down). Serving runs are never profiled.
    """
    reports = []
    for session in sessions:
        path = Path(session.end_profiling())
        try:
            reports.append(assess(read_profile(path), target, "measured"))
        finally:
            path.unlink(missing_ok=True)
            if path.parent.name.startswith("genba-placement-"):
                _remove_empty(path.parent)
    return merge(reports)


def read_profile(path: Path) -> list[NodePlace]:
    """The nodes of an ORT profile (one ``*_kernel_time`` event each), first run only."""
    events = json.loads(path.read_text(encoding="utf-8"))
    seen: dict[str, NodePlace] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        name = str(event["name"]).removesuffix("_kernel_time")
        if name in seen or "provider" not in args:
            continue
        outputs = tuple(
            str(next(iter(entry)))
            for entry in args.get("output_type_shape") or ()
            if isinstance(entry, dict) and entry
        )
        seen[name] = NodePlace(name, str(args.get("op_name", "")), str(args["provider"]), outputs)
    return list(seen.values())


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# -- predicted -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelTable:
    """The CUDA provider's kernels: ``(domain, op) -> [(since, until, allowed types)]``."""

    onnxruntime: str
    kernels: Mapping[tuple[str, str], tuple[tuple[int, int, frozenset[str]], ...]]

    def supports(self, domain: str, op_type: str, opset: int, input_types: Sequence[str | None]) -> bool:
        """A kernel for this operator at this opset whose type constraints admit the data inputs.

        ``input_types`` are the types of the inputs the operator's schema leaves generic (its type
        parameters); only data types among them are checked (floats, 8- and 16-bit integers): the
        registry lists the types a kernel is specialised for, while index inputs (int32 token ids,
        int64 axes) are usually fixed by the kernel and not listed.
        """
        data = [t for t in input_types if t in _DATA_TYPES]
        for since, until, allowed in self.kernels.get((_domain(domain), op_type), ()):
            if since <= opset <= until and all(t in allowed for t in data):
                return True
        return False

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> KernelTable:
        kernels: dict[tuple[str, str], tuple[tuple[int, int, frozenset[str]], ...]] = {}
        for key, entries in document["kernels"].items():
            domain, op_type = key.split("|", 1)
            kernels[(_domain(domain), op_type)] = tuple(
                (int(since), int(until), frozenset(types)) for since, until, types in entries
            )
        return cls(onnxruntime=str(document["onnxruntime"]), kernels=kernels)


@lru_cache(maxsize=1)
def kernel_table() -> KernelTable | None:
    """The recorded CUDA kernel registry, or None when this installation has none."""
    if not KERNEL_TABLE.is_file():
        return None
    return KernelTable.from_json(json.loads(KERNEL_TABLE.read_text(encoding="utf-8")))


def predict(graph: bytes, table: KernelTable) -> PlacementReport:
    """Which nodes of a stored graph the CUDA provider has no kernel for (the rest go to the GPU).

    Shape work is not predicted (ORT decides it at load); a node counts as placed on CUDA when a
    kernel exists for its operator, opset and known input element types.
    """
    import onnx

    model = onnx.load_from_string(graph)
    opsets = {_domain(entry.domain): int(entry.version) for entry in model.opset_import}
    types = _element_types(model)
    nodes = []
    generic = _generic_inputs()
    for index, node in enumerate(model.graph.node):
        if node.op_type == "Constant" and not node.domain:
            continue  # ONNX Runtime turns Constant nodes into initializers when it loads the graph
        opset = opsets.get(_domain(node.domain), 1)
        formal = _formal_types(generic, node.domain, node.op_type, opset)
        inputs = [
            types.get(name)
            for position, name in enumerate(node.input)
            if name and (formal is None or formal[min(position, len(formal) - 1)])
        ]
        supported = table.supports(node.domain, node.op_type, opset, inputs)
        outputs = tuple(types.get(name) or "float" for name in node.output)
        nodes.append(
            NodePlace(node.name or f"node{index}", node.op_type, CUDA if supported else CPU, outputs)
        )
    return assess(nodes, CUDA, "predicted")


@lru_cache(maxsize=1)
def _generic_inputs() -> dict[tuple[str, str], list[tuple[int, tuple[bool, ...]]]]:
    """For every operator schema ONNX Runtime knows (contrib ops included): per version, which
    inputs take a type parameter (``T1``) rather than a fixed type (``tensor(float)``)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as capi

    schemas: dict[tuple[str, str], list[tuple[int, tuple[bool, ...]]]] = {}
    for schema in capi.get_all_operator_schema():
        generic = tuple(not formal.typeStr.startswith("tensor(") for formal in schema.inputs)
        schemas.setdefault((_domain(schema.domain), schema.name), []).append(
            (int(schema.since_version), generic)
        )
    for versions in schemas.values():
        versions.sort()
    return schemas


def _formal_types(
    schemas: Mapping[tuple[str, str], list[tuple[int, tuple[bool, ...]]]],
    domain: str,
    op_type: str,
    opset: int,
) -> tuple[bool, ...] | None:
    """Which inputs of the schema in force at ``opset`` are generic (None: unknown operator)."""
    found = [generic for since, generic in schemas.get((_domain(domain), op_type), []) if since <= opset]
    return found[-1] if found and found[-1] else None


def _element_types(model: Any) -> dict[str, str | None]:
    """Element type of every tensor ONNX shape inference can tell (contrib ops' outputs may be unknown)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is best effort: unknown types are simply not checked
        inferred = model
    graph = inferred.graph
    types: dict[str, str | None] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        elem = value.type.tensor_type.elem_type
        types[value.name] = _ELEMENT_TYPES.get(elem) if elem else None
    for initializer in graph.initializer:
        types[initializer.name] = _ELEMENT_TYPES.get(initializer.data_type)
    return types


def _domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain
