"""Size on disk of each role (pyproject extra): the installed distributions it resolves to.

Reads the extras from pyproject.toml, follows every requirement (markers and extras evaluated for
this interpreter) through the distributions installed in this environment, and sums the files
each one's RECORD lists. Prints JSON: per role, megabytes and the largest distributions.

    .venv/bin/python bench/role_sizes.py [--top 8]

The figures are for this environment's platform (Linux x86_64, CPython 3.11, the CPU torch wheel
that the Makefile installs; a CUDA torch is several GB more).
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("base", "site", "site-plots", "site-learn", "gui", "it", "simulation", "all")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file)))
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def _wanted(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def resolve(requirements: list[str], own: dict[str, list[str]], base: list[str]) -> dict[str, int]:
    """Distribution name → bytes for everything ``requirements`` pulls in (genba's own extras too)."""
    sizes: dict[str, int] = {}
    todo: list[tuple[str, set[str]]] = [(text, set()) for text in [*base, *requirements]]
    seen_extras: set[tuple[str, frozenset[str]]] = set()
    while todo:
        text, _ = todo.pop()
        req = Requirement(text)
        name = _canonical(req.name)
        key = (name, frozenset(req.extras))
        if key in seen_extras:
            continue
        seen_extras.add(key)
        if name == "genba":  # a role including another: genba[site]
            for extra in req.extras:
                todo.extend((inner, set()) for inner in own[extra])
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sizes.setdefault(f"{name} (not installed)", 0)
            continue
        if name not in sizes:
            sizes[name] = _dist_size(dist)
        for inner in dist.requires or ():
            inner_req = Requirement(inner)
            if _wanted(inner_req, set(req.extras)):
                todo.append((inner, set()))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=8, help="largest distributions listed per role")
    args = parser.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    own: dict[str, list[str]] = project["optional-dependencies"]
    base: list[str] = project["dependencies"]
    report: dict[str, object] = {}
    for role in ROLES:
        sizes = resolve([] if role == "base" else own[role], own, base)
        largest = sorted(sizes.items(), key=lambda item: -item[1])[: args.top]
        report[role] = {
            "mb": round(sum(sizes.values()) / 1e6, 1),
            "distributions": len(sizes),
            "largest_mb": {name: round(size / 1e6, 1) for name, size in largest},
            "has": {pkg: pkg in sizes for pkg in ("torch", "onnxruntime-gpu", "pyside6-essentials", "ray")},
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
