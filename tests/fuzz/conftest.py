"""Registers the fuzzing harness (fuzzing.py) and its samples (samples.py) as importable modules.

tests/ is no package, so the fuzz targets import them under these names; bench/fuzz.py does the same.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HELPERS = {"genba_fuzzing": "fuzzing.py", "genba_fuzz_samples": "samples.py"}


def register_helpers() -> None:
    for name, file in HELPERS.items():
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)


register_helpers()
