"""Files replaced in one step: a reader (the front reloading its CRL, a restarted SuperLink, a crash
mid-write) finds the old content or the new, whole, never a part.

The content goes to a temporary file of its own beside the target (so two writers never share one,
and the rename stays on one file system), is flushed to disk, and is renamed over the target; on
any failure the temporary file is removed and the target is as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Permissions of a replaced file unless told otherwise: readable by all, written by its owner.
DEFAULT_MODE = 0o644


def replace_atomically(path: Path, content: bytes, mode: int = DEFAULT_MODE) -> Path:
    """Replace ``path`` with ``content`` in one step, with permissions ``mode``."""
    path = Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: Path, document: Any, mode: int = DEFAULT_MODE) -> Path:
    """``document`` as indented, key-sorted JSON in ``path``, replaced in one step."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    return replace_atomically(path, text.encode("utf-8"), mode)
