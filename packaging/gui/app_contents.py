"""What the operator app's desktop build may carry: read by the spec, its Qt hooks and check_app.py.

The app talks to the agent over HTTP, so the machine learning stack has no business in it; the
build excludes it explicitly and check_app.py refuses a built folder that holds any of it anyway.
"""

from __future__ import annotations

from pathlib import Path

#: Top-level packages whose presence in the built app fails the build.
FORBIDDEN = ("torch", "onnxruntime", "flwr", "ray", "transformers", "scipy")

#: Excluded from the analysis: the forbidden ones, the rest of the site's and IT's stacks, and
#: Genba's packages the app never uses. The app's imports must reach none of them (a frozen app
#: without a module it imports fails when it gets there): tests/packaging/test_gui_app.py.
EXCLUDES = (
    *FORBIDDEN,
    "numpy", "onnx", "tokenizers", "optimum", "sentence_transformers", "opacus", "matplotlib", "PIL",
    "fastapi", "uvicorn", "starlette", "export", "server", "genba.runtime", "genba.demo",
    "edge_agent.agent", "edge_agent.store", "edge_agent.serving", "edge_agent.training",
)  # fmt: skip

#: The Qt plugins kept, by plugin type: the names kept (without ``lib``/``q`` and the suffix),
#: or None for every plugin of that type. Every other plugin type is left out.
QT_PLUGINS: dict[str, tuple[str, ...] | None] = {
    # offscreen for checks; xcb on Linux desktops (Wayland sessions run it through XWayland);
    # windows and cocoa for builds on those systems
    "platforms": ("offscreen", "xcb", "windows", "cocoa"),
    "xcbglintegrations": None,
    "platforminputcontexts": None,  # input methods: typing Japanese needs them
    "imageformats": ("jpeg", "gif", "webp", "tiff", "ico", "bmp"),  # PNG is built into QtGui
}

#: Qt's own translations kept: the languages the app speaks besides English (gui/i18n).
QT_TRANSLATIONS = ("qtbase_ja.qm",)


def plugin_name(file_name: str) -> str:
    """``libqxcb.so`` / ``qoffscreen.dll`` / ``libqjpeg.dylib`` → ``xcb`` / ``offscreen`` / ``jpeg``."""
    stem = file_name.split(".", 1)[0]
    stem = stem.removeprefix("lib")
    return stem.removeprefix("q")


def keeps_plugin(plugin_type: str, file_name: str) -> bool:
    """Whether the plugin ``file_name`` of ``plugin_type`` belongs in the app."""
    if plugin_type not in QT_PLUGINS:
        return False
    names = QT_PLUGINS[plugin_type]
    return names is None or plugin_name(file_name) in names


def forbidden_in(names: list[str]) -> list[str]:
    """The forbidden packages among module names (``torch.nn``) or paths (``torch/lib/x.so``)."""
    found = set()
    for name in names:
        top = name.replace("\\", "/").replace("/", ".").split(".", 1)[0]
        if top in FORBIDDEN:
            found.add(top)
    return sorted(found)


def excluded_reached_from(script: Path, search_path: list[str]) -> list[str]:
    """The excluded modules (EXCLUDES) that ``script``'s imports reach, statically, as a build
    follows them (module level and inside functions), through the packages on ``search_path``.
    An excluded module is not entered: its import is recorded where it was reached."""
    import modulefinder

    finder = modulefinder.ModuleFinder(path=search_path, excludes=list(EXCLUDES))
    finder.run_script(str(script))
    reached = [*finder.modules, *finder.badmodules]
    return sorted({excluded for excluded in EXCLUDES for name in reached if _within(name, excluded)})


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
