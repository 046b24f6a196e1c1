"""Sites for the demo, benchmarks and screenshots: the default bundle, and a site serving it for real."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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


@contextmanager
def served_site(
    root: Path, bundle: Path, trust: Path, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> Iterator[Any]:
    """A fresh site at ``root`` with ``bundle`` in production and its agent serving; stopped on exit."""
    import tomli_w

    from edge_agent.site_init import init_site
    from genba import env

    shutil.rmtree(root, ignore_errors=True)
    site = init_site(root, site_name=root.name, trust=[trust])
    document = {"site": {"name": root.name}, "runtime": {"provider": "cpu"}, **(settings or {})}
    site.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    install = [sys.executable, "-m", "genba", "agent", "install", "--data", str(root), str(bundle)]
    subprocess.run(install, check=True, env=env.child_environment(), stdout=subprocess.DEVNULL)
    log = (root / "agent.log").open("wb")
    serve = [sys.executable, "-m", "genba", "agent", "serve", "--data", str(root)]
    process = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=env.child_environment())
    try:
        while not site.address_file.exists():
            if process.poll() is not None:
                sys.exit(f"the agent did not start; see {root / 'agent.log'}")
            time.sleep(0.02)
        yield site
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
