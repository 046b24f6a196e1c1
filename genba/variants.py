"""A bundle's backbone variants, one per target: ``cpu`` (int8, chosen by measurement) and ``cuda`` (fp16).

The manifest's top-level ``graphs`` and ``precision`` describe the ``cpu`` variant, the one that
runs anywhere, so agents that predate variants keep serving it. ``variants`` lists every target
with its graphs, precision, provider and gate report; graphs the variants share (the fp32 head,
the preprocessing) are the same files. A bundle without ``variants`` has one variant, ``default``,
served on whatever provider the site has (as before variants existed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genba.errors import BundleFormatError

CPU_TARGET = "cpu"
CUDA_TARGET = "cuda"
DEFAULT = "default"
TARGETS: tuple[str, ...] = (CPU_TARGET, CUDA_TARGET)
PROVIDERS = {CPU_TARGET: "CPUExecutionProvider", CUDA_TARGET: "CUDAExecutionProvider"}


@dataclass(frozen=True)
class VariantSpec:
    """One target's graphs: ``{"backbone": {"file": ...}, "head": {...}}`` and their precision."""

    name: str
    graphs: Mapping[str, Mapping[str, Any]]
    precision: Mapping[str, Any] = field(default_factory=dict)
    provider: str | None = None  # None: any provider (a bundle from before variants)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(str(spec["file"]) for spec in self.graphs.values())

    @property
    def label(self) -> str:
        """What status pages show: ``cuda (fp16)``, ``cpu (int8-per-channel)``."""
        chosen = self.precision.get("variant") or self.precision.get("backbone")
        return f"{self.name} ({chosen})" if chosen else self.name


def variants_of(manifest: Mapping[str, Any]) -> dict[str, VariantSpec]:
    """The bundle's variants by target; refuses a manifest whose ``cpu`` variant contradicts ``graphs``."""
    listed = manifest.get("variants")
    if not listed:
        return {DEFAULT: VariantSpec(DEFAULT, manifest["graphs"], manifest.get("precision") or {})}
    if not isinstance(listed, Mapping):
        raise BundleFormatError("bundle manifest 'variants' must map targets to graphs")
    unknown = sorted(set(listed) - set(TARGETS))
    if unknown:
        raise BundleFormatError(
            f"bundle has variants for unknown targets {unknown}; this agent knows {', '.join(TARGETS)}: "
            "upgrade Genba at this site"
        )
    specs = {
        name: VariantSpec(
            name, entry["graphs"], entry.get("precision") or {}, str(entry.get("provider") or PROVIDERS[name])
        )
        for name, entry in listed.items()
    }
    cpu = specs.get(CPU_TARGET)
    if cpu is not None and dict(cpu.graphs) != dict(manifest["graphs"]):
        raise BundleFormatError(
            "bundle manifest lists a cpu variant that is not its graphs; the bundle is invalid"
        )
    for spec in specs.values():
        missing = [name for name in spec.files if name not in manifest["files"]]
        if missing:
            raise BundleFormatError(f"bundle variant {spec.name} names files it does not hold: {missing}")
    return specs


def portable(manifest: Mapping[str, Any]) -> VariantSpec:
    """The variant that runs on any provider: ``cpu``, else ``default``, else the only one there is."""
    specs = variants_of(manifest)
    for name in (CPU_TARGET, DEFAULT):
        if name in specs:
            return specs[name]
    return next(iter(specs.values()))


def for_gpu(manifest: Mapping[str, Any]) -> VariantSpec:
    """The variant a CUDA site tries first: ``cuda`` when the bundle has one."""
    specs = variants_of(manifest)
    return specs.get(CUDA_TARGET) or portable(manifest)


def variant_named(manifest: Mapping[str, Any], name: str) -> VariantSpec:
    specs = variants_of(manifest)
    if name not in specs:
        raise BundleFormatError(f"bundle has no {name!r} variant (it has {', '.join(sorted(specs))})")
    return specs[name]
