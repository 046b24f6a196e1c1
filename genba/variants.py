"""A bundle's backbone variants, one per target: ``cpu`` (int8, chosen by measurement) and ``cuda`` (fp16).

The manifest's top-level ``graphs`` and ``precision`` describe the ``cpu`` variant, the one that
runs anywhere, so agents that predate variants keep serving it. ``variants`` lists every target
with its graphs, precision, provider and gate report; graphs the variants share (the fp32 head,
the preprocessing) are the same files. A bundle without ``variants`` has one variant, ``default``,
served on whatever provider the site has (as before variants existed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from genba.errors import BundleFormatError
from genba.manifest import GraphSpec, Manifest, Precision, Variant

CPU_TARGET = "cpu"
CUDA_TARGET = "cuda"
DEFAULT = "default"
TARGETS: tuple[str, ...] = (CPU_TARGET, CUDA_TARGET)
PROVIDERS = {CPU_TARGET: "CPUExecutionProvider", CUDA_TARGET: "CUDAExecutionProvider"}


@dataclass(frozen=True)
class VariantSpec:
    """One target's graphs (``backbone`` and ``head``, or one ``model``) and their precision."""

    name: str
    graphs: Mapping[str, GraphSpec]
    precision: Precision | None = None
    provider: str | None = None  # None: any provider (a bundle from before variants)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(spec.file for spec in self.graphs.values())

    @property
    def precision_label(self) -> str | None:
        """The chosen variant (``int8-per-channel``), else the backbone's precision (``fp16``)."""
        return self.precision.label if self.precision else None

    @property
    def label(self) -> str:
        """What status pages show: ``cuda (fp16)``, ``cpu (int8-per-channel)``."""
        chosen = self.precision_label
        return f"{self.name} ({chosen})" if chosen else self.name


def variants_of(manifest: Manifest) -> dict[str, VariantSpec]:
    """The bundle's variants by target; refuses a manifest whose ``cpu`` variant contradicts ``graphs``."""
    listed = manifest.variants
    if not listed:
        return {DEFAULT: VariantSpec(DEFAULT, manifest.graphs, manifest.precision)}
    unknown = sorted(set(listed) - set(TARGETS))
    if unknown:
        raise BundleFormatError(
            f"bundle has variants for unknown targets {unknown}; this agent knows {', '.join(TARGETS)}: "
            "upgrade Genba at this site"
        )
    specs = {name: _spec(name, entry) for name, entry in listed.items()}
    top = dict(manifest.graphs)
    cpu = specs.get(CPU_TARGET)
    if cpu is not None and dict(cpu.graphs) != top:
        raise BundleFormatError(
            "bundle manifest lists a cpu variant that is not its graphs; the bundle is invalid"
        )
    if cpu is None and not any(dict(spec.graphs) == top for spec in specs.values()):
        # Agents that predate variants serve the top-level graphs: they must be one of the variants.
        raise BundleFormatError("bundle manifest's graphs are none of its variants; the bundle is invalid")
    if len({tuple(sorted(spec.graphs)) for spec in specs.values()}) > 1:
        raise BundleFormatError("bundle variants have different graph layouts; the bundle is invalid")
    for spec in specs.values():
        missing = [name for name in spec.files if name not in manifest.files]
        if missing:
            raise BundleFormatError(f"bundle variant {spec.name} names files it does not hold: {missing}")
    return specs


def _spec(name: str, entry: Variant) -> VariantSpec:
    """One ``variants`` entry (its shape was checked when the manifest was parsed)."""
    return VariantSpec(name, entry.graphs, entry.precision, PROVIDERS[name])


def portable(manifest: Manifest) -> VariantSpec:
    """The variant that runs on any provider: ``cpu``, else ``default``, else the only one there is."""
    specs = variants_of(manifest)
    for name in (CPU_TARGET, DEFAULT):
        if name in specs:
            return specs[name]
    return next(iter(specs.values()))


def for_gpu(manifest: Manifest) -> VariantSpec:
    """The variant a CUDA site tries first: ``cuda`` when the bundle has one."""
    specs = variants_of(manifest)
    return specs.get(CUDA_TARGET) or portable(manifest)


def variant_named(manifest: Manifest, name: str) -> VariantSpec:
    specs = variants_of(manifest)
    if name not in specs:
        raise BundleFormatError(f"bundle has no {name!r} variant (it has {', '.join(sorted(specs))})")
    return specs[name]
