"""A bundle copy cut short by the process's file-size limit (RLIMIT_FSIZE: the kernel answers
EFBIG, as a quota answers EDQUOT) is refused like a full disk: one line, nothing left in the
models folder. Runs in a child process, so the limit holds there only; needs no root."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from genba import env

pytestmark = pytest.mark.fault

# Copies the bundle in with every file limited to 256 KB; prints what happened as JSON.
CHILD = """
import json, resource, signal, sys
from pathlib import Path
from edge_agent.library import ModelLibrary
from genba import keys
from genba.errors import GenbaError
from genba.runtime.config import RuntimeConfig

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
models = Path(sys.argv[1])
library = ModelLibrary(models, [keys.load_public_key(Path(sys.argv[3]))], RuntimeConfig(provider="cpu"))
try:
    library.copy_in(Path(sys.argv[2]))
    outcome = {"error": None}
except GenbaError as error:
    outcome = {"error": type(error).__name__, "message": str(error), "status": getattr(error, "status", None)}
outcome["left"] = sorted(path.name for path in models.iterdir())
print(json.dumps(outcome))
"""


def test_a_copy_over_the_file_size_limit_is_refused_whole(
    tmp_path: Path,
    bundle_versions: dict[int, Path],
    make_version: Callable[..., Path],
    keypair: tuple[Path, Path],
) -> None:
    big = make_version(
        bundle_versions[1], 2, edit=lambda root: (root / "padding.bin").write_bytes(bytes(1 << 20))
    )
    models = tmp_path / "models"
    models.mkdir()
    ran = subprocess.run(
        [sys.executable, "-c", CHILD, str(models), str(big), str(keypair[1])],
        capture_output=True, text=True, env=env.child_environment(), timeout=120, check=True,
    )  # fmt: skip
    outcome = json.loads(ran.stdout)
    assert outcome["error"] == "DiskFullError" and outcome["status"] == 507, outcome
    assert "no space left to install" in outcome["message"] and "\n" not in outcome["message"]
    assert outcome["left"] == []  # no half-made copy, no staging folder
