"""The typed manifest: parsed and checked once when a bundle is read, written back byte for byte.

``Manifest.from_json`` checks every key the readers rely on and raises ``BundleFormatError``
naming the first one that is missing or of the wrong type; ``to_json`` gives back exactly the
mapping that was parsed, so canonical bytes, and with them signatures, never change. Keys
this release does not know (from an older or newer Genba) and optional keys written as
``null`` are kept, as read, in each part's ``extra``; a field that is ``None`` is written
only if ``extra`` holds it. Build manifests from JSON (``from_json``) rather than field by
field, so a key written as ``null`` stays ``null``. Free-form parts (validation reports,
reference statistics, lineage sources, preprocessing settings) stay JSON mappings.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from genba.errors import BundleFormatError
from genba.versions import ModelVersion

FORMAT_VERSION = 1
Json = Mapping[str, Any]
T = TypeVar("T")

_FIX = "re-export the bundle with 'genba export'"


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", bool: "true or false", dict: "an object", list: "a list"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


class _Reader:
    """One JSON object of the manifest at ``where`` (``model``, ``files['head.onnx']``, ...)."""

    def __init__(self, raw: Any, where: str, known: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise BundleFormatError(f"bundle manifest key {where!r} must be an object; {_FIX}")
        self.raw, self.where, self.known = raw, where, known

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def required(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if self.raw.get(key) is None:
            raise BundleFormatError(f"bundle manifest has no {self._path(key)!r}; {_FIX}")
        return self.optional(key, kind)

    def optional(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.raw.get(key)
        wrong_bool = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
        if value is not None and (wrong_bool or not isinstance(value, kind)):
            raise BundleFormatError(
                f"bundle manifest key {self._path(key)!r} must be {_type_name(kind)}, "
                f"not {type(value).__name__}; {_FIX}"
            )
        return value

    def table(
        self, key: str, parse: Callable[[Any, str], T], *, required: bool = True
    ) -> dict[str, T] | None:
        """A mapping of names to parts, each parsed by ``parse(value, where)``."""
        value = self.required(key, dict) if required else self.optional(key, dict)
        if value is None:
            return None
        return {name: parse(entry, f"{self._path(key)}[{name!r}]") for name, entry in value.items()}

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.optional(key, list)
        if value is not None and not all(isinstance(item, str) for item in value):
            raise BundleFormatError(f"bundle manifest key {self._path(key)!r} must list strings; {_FIX}")
        return None if value is None else tuple(value)

    def extra(self) -> dict[str, Any]:
        """Unknown keys, and known ones written as null: kept so the manifest is written as read."""
        return {k: v for k, v in self.raw.items() if k not in self.known or v is None}


def _written(extra: Json, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` plus every field that is not None, as JSON."""
    result = copy.deepcopy(dict(extra))
    result.update({k: copy.deepcopy(v) for k, v in fields.items() if v is not None})
    return result


def _table_json(table: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if table is None else {name: part.to_json() for name, part in table.items()}


@dataclass(frozen=True)
class FileEntry:
    """One payload file as the file table lists it."""

    sha256: str
    bytes: int
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "files") -> FileEntry:
        read = _Reader(raw, where, ("sha256", "bytes"))
        return cls(read.required("sha256", str), read.required("bytes", int), read.extra())

    def to_json(self) -> dict[str, Any]:
        return _written(self.extra, {"sha256": self.sha256, "bytes": self.bytes})


@dataclass(frozen=True)
class Signer:
    key_id: str
    algorithm: str
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "signer") -> Signer:
        read = _Reader(raw, where, ("key_id", "algorithm"))
        return cls(read.required("key_id", str), read.required("algorithm", str), read.extra())

    def to_json(self) -> dict[str, Any]:
        return _written(self.extra, {"key_id": self.key_id, "algorithm": self.algorithm})


@dataclass(frozen=True)
class ModelInfo:
    """The ``model`` block: name, release, the site's revision (None for a release), creation time."""

    name: str | None
    release: int
    revision: int | None = None
    created_at: str | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "model") -> ModelInfo:
        read = _Reader(raw, where, ("name", "version", "revision", "created_at"))
        return cls(
            read.optional("name", str),
            read.required("version", int),
            read.optional("revision", int),
            read.optional("created_at", str),
            read.extra(),
        )

    @property
    def version(self) -> ModelVersion:
        return ModelVersion(self.release, self.revision or 0)

    def to_json(self) -> dict[str, Any]:
        fields = {"name": self.name, "version": self.release, "revision": self.revision}
        return _written(self.extra, {**fields, "created_at": self.created_at})


@dataclass(frozen=True)
class InputSpec:
    """The preprocessing the export resolved: ``kind`` (text, image) and its settings in ``extra``."""

    kind: str
    max_length: int | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "input") -> InputSpec:
        read = _Reader(raw, where, ("kind", "max_length"))
        return cls(read.required("kind", str), read.optional("max_length", int), read.extra())

    def to_json(self) -> dict[str, Any]:
        return _written(self.extra, {"kind": self.kind, "max_length": self.max_length})


@dataclass(frozen=True)
class GraphSpec:
    """One graph of a layout: its file, precision and named outputs."""

    file: str
    precision: str | None = None
    outputs: tuple[str, ...] | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "graphs") -> GraphSpec:
        read = _Reader(raw, where, ("file", "precision", "outputs"))
        file, precision = read.required("file", str), read.optional("precision", str)
        return cls(file, precision, read.strings("outputs"), read.extra())

    def to_json(self) -> dict[str, Any]:
        outputs = None if self.outputs is None else list(self.outputs)
        return _written(self.extra, {"file": self.file, "precision": self.precision, "outputs": outputs})


@dataclass(frozen=True)
class Precision:
    """What the backbone was exported as (``int8``, ``fp16``...) and the measured variant chosen."""

    backbone: str
    variant: str | None = None
    details: Json | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "precision") -> Precision:
        read = _Reader(raw, where, ("backbone", "variant", "details"))
        backbone, variant = read.required("backbone", str), read.optional("variant", str)
        return cls(backbone, variant, read.optional("details", dict), read.extra())

    @property
    def label(self) -> str:
        return self.variant or self.backbone

    def to_json(self) -> dict[str, Any]:
        fields = {"backbone": self.backbone, "variant": self.variant, "details": self.details}
        return _written(self.extra, fields)


@dataclass(frozen=True)
class Variant:
    """One target's entry in ``variants``: its graphs, precision, provider and gate report."""

    graphs: Mapping[str, GraphSpec]
    provider: str | None = None
    precision: Precision | None = None
    validation: Json | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "variants") -> Variant:
        graphs = raw.get("graphs") if isinstance(raw, dict) else None
        if not isinstance(graphs, dict) or not graphs or not all(
            isinstance(spec, dict) and isinstance(spec.get("file"), str) for spec in graphs.values()
        ):
            raise BundleFormatError(f"bundle {where} is malformed (graphs with a file each expected)")
        read = _Reader(raw, where, ("graphs", "provider", "precision", "validation"))
        precision = read.optional("precision", dict)
        return cls(
            read.table("graphs", GraphSpec.from_json) or {},
            read.optional("provider", str),
            None if precision is None else Precision.from_json(precision, f"{where}.precision"),
            read.optional("validation", dict),
            read.extra(),
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "graphs": _table_json(self.graphs),
            "provider": self.provider,
            "precision": self.precision.to_json() if self.precision else None,
            "validation": self.validation,
        }
        return _written(self.extra, fields)


def _variant(raw: Any, where: str) -> Variant:
    # "bundle variant 'cuda' is malformed": the name a site reads in the refusal.
    return Variant.from_json(raw, f"variant {where.partition('[')[2].rstrip(']')}")


@dataclass(frozen=True)
class ParentRef:
    """The bundle this one descends from: name, version and the SHA-256 of its manifest."""

    name: str | None
    release: int
    manifest_sha256: str | None = None
    revision: int | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "lineage.parent") -> ParentRef:
        read = _Reader(raw, where, ("name", "version", "revision", "manifest_sha256"))
        return cls(
            read.optional("name", str),
            read.required("version", int),
            read.optional("manifest_sha256", str),
            read.optional("revision", int),
            read.extra(),
        )

    @property
    def version(self) -> ModelVersion:
        return ModelVersion(self.release, self.revision or 0)

    def to_json(self) -> dict[str, Any]:
        fields = {"name": self.name, "version": self.release, "revision": self.revision}
        return _written(self.extra, {**fields, "manifest_sha256": self.manifest_sha256})


@dataclass(frozen=True)
class Lineage:
    """Where the bundle came from: parent, federated run and round, rollback, and its source."""

    parent: ParentRef | None = None
    federated_run: str | None = None
    round: int | None = None
    rollback: bool | None = None
    source: Json | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any, where: str = "lineage") -> Lineage:
        read = _Reader(raw, where, ("parent", "federated_run", "round", "rollback", "source"))
        parent = read.optional("parent", dict)
        return cls(
            None if parent is None else ParentRef.from_json(parent, f"{where}.parent"),
            read.optional("federated_run", str),
            read.optional("round", int),
            read.optional("rollback", bool),
            read.optional("source", dict),
            read.extra(),
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "parent": self.parent.to_json() if self.parent else None,
            "federated_run": self.federated_run,
            "round": self.round,
            "rollback": self.rollback,
            "source": self.source,
        }
        return _written(self.extra, fields)


_MANIFEST_KEYS = (
    "format_version", "model", "task", "labels", "input", "graphs", "precision", "variants", "opset",
    "runtime", "validation", "reference_stats", "lineage", "files", "signer",
)  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """A bundle's ``manifest.json``, typed. ``files`` and ``signer`` are what signing added."""

    format_version: int
    model: ModelInfo
    task: str
    input: InputSpec
    graphs: Mapping[str, GraphSpec]
    opset: int
    lineage: Lineage
    files: Mapping[str, FileEntry]
    labels: tuple[str, ...] | None = None
    precision: Precision | None = None
    variants: Mapping[str, Variant] | None = None  # None: a bundle from before variants
    runtime: Mapping[str, str] | None = None
    validation: Json | None = None
    reference_stats: Json | None = None
    signer: Signer | None = None
    extra: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> Manifest:
        """Check and type a manifest; raises ``BundleFormatError`` naming the first bad key."""
        read = _Reader(copy.deepcopy(dict(data)), "", _MANIFEST_KEYS)
        version = read.raw.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise BundleFormatError(
                f"bundle format version {version!r} is not supported (this Genba reads {FORMAT_VERSION})"
            )
        if not isinstance(read.raw.get("files"), dict):
            raise BundleFormatError("manifest.json has no file table; it is not a complete Genba bundle")
        if read.raw.get("variants") is not None and not isinstance(read.raw["variants"], dict):
            raise BundleFormatError("bundle manifest 'variants' must map targets to graphs")
        return cls(
            format_version=version,
            model=ModelInfo.from_json(read.required("model", dict)),
            task=read.required("task", str),
            input=InputSpec.from_json(read.required("input", dict)),
            graphs=read.table("graphs", GraphSpec.from_json) or {},
            opset=read.required("opset", int),
            lineage=Lineage.from_json(read.required("lineage", dict)),
            files=read.table("files", FileEntry.from_json) or {},
            labels=read.strings("labels"),
            precision=_optional_part(read, "precision", Precision.from_json),
            variants=read.table("variants", _variant, required=False),
            runtime=read.optional("runtime", dict),
            validation=read.optional("validation", dict),
            reference_stats=read.optional("reference_stats", dict),
            signer=_optional_part(read, "signer", Signer.from_json),
            extra=read.extra(),
        )

    @classmethod
    def from_record(cls, data: Json) -> Manifest | None:
        """A manifest copy kept elsewhere (a store row); None when it is not a whole, valid manifest."""
        try:
            return cls.from_json(data)
        except BundleFormatError:
            return None

    @property
    def version(self) -> ModelVersion:
        return self.model.version

    def to_json(self) -> dict[str, Any]:
        """Exactly the mapping that was parsed: what is hashed, signed and written."""
        fields: dict[str, Any] = {
            "format_version": self.format_version,
            "model": self.model.to_json(),
            "task": self.task,
            "labels": None if self.labels is None else list(self.labels),
            "input": self.input.to_json(),
            "graphs": _table_json(self.graphs),
            "precision": self.precision.to_json() if self.precision else None,
            "variants": _table_json(self.variants),
            "opset": self.opset,
            "runtime": self.runtime,
            "validation": self.validation,
            "reference_stats": self.reference_stats,
            "lineage": self.lineage.to_json(),
            "files": _table_json(self.files),
            "signer": self.signer.to_json() if self.signer else None,
        }
        return _written(self.extra, fields)


def _optional_part(read: _Reader, key: str, parse: Callable[[Any, str], T]) -> T | None:
    value = read.optional(key, dict)
    return None if value is None else parse(value, key)
