"""The default bundle (packaged all-MiniLM-L6-v2 with IT's default head), exported once for benchmarks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def signed_default_bundle(out: Path) -> tuple[Path, Path]:
    """``(bundle, public key)`` under ``out``, exported and signed on first use, verified after."""
    from export.default_model import export_default_bundle, train_default_head, write_default_data
    from genba import keys
    from genba.bundle import verify_directory
    from genba.errors import GenbaError

    bundle, key = out / "bundle", out / "keys" / "it-sign.pem"
    pub = key.with_name(key.name + ".pub")
    try:
        verify_directory(bundle, [keys.load_public_key(pub)])
        return bundle, pub
    except GenbaError:
        shutil.rmtree(out, ignore_errors=True)
    keys.write_key_pair(keys.generate_signing_key(), key)
    print("… exporting the default bundle (once)", file=sys.stderr)
    export_default_bundle(
        bundle, write_default_data(out / "data"), train_default_head(), signing_key=key, threads=2
    )
    return bundle, pub
