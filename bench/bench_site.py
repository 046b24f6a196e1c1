"""What the agent benchmarks share: the bundle they serve, a site set up to serve it, the agent started.

``bench/serving_under_polling.py``, ``bench/soak.py``, ``bench/durability.py`` and
``bench/reliability.py`` import it (bench/ is on their path as the scripts' own folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from genba import env

#: Where the default bundle (the packaged MiniLM, exported and signed once) is kept between runs.
DEFAULT_BUNDLE_CACHE = Path("bench-out/default-bundle")


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, help="serve this bundle (default: the packaged MiniLM's)")
    parser.add_argument("--trust", type=Path, help="the public key --bundle is signed with")


def bundle_and_trust(
    parser: argparse.ArgumentParser, args: argparse.Namespace, cache: Path = DEFAULT_BUNDLE_CACHE
) -> tuple[Path, Path]:
    """``--bundle`` and ``--trust``, or the default bundle (exported into ``cache`` on first use)."""
    if (args.bundle is None) != (args.trust is None):
        parser.error("--bundle and --trust go together: the bundle and the public key it is signed with")
    if args.bundle is not None:
        return args.bundle, args.trust
    from genba.demo.sites import signed_default_bundle

    return signed_default_bundle(cache)


def serving_site(root: Path, bundle: Path, trust: Path, name: str, **sections: dict[str, Any]) -> Any:
    """A fresh site at ``root`` serving ``bundle`` on the CPU; ``sections`` go into its agent.toml."""
    import tomli_w

    from edge_agent.site_init import init_site

    shutil.rmtree(root, ignore_errors=True)
    site = init_site(root, site_name=name, trust=[trust])
    document = {
        "site": {"name": name},
        "runtime": {"provider": "cpu"},
        "batching": {"max_batch_size": 32, "max_wait_ms": 2.0},
        **sections,
    }
    site.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    install = [sys.executable, "-m", "genba", "agent", "install", "--data", str(root), str(bundle)]
    subprocess.run(install, check=True, env=env.child_environment(), stdout=subprocess.DEVNULL)
    return site


def start_agent(site: Any, log: Path, timeout_s: float = 180.0) -> subprocess.Popen[bytes]:
    """``genba agent serve`` for ``site``, returned once it has written its address."""
    site.address_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "genba", "agent", "serve", "--data", str(site.root)]
    process = subprocess.Popen(
        command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env.child_environment()
    )
    deadline = time.monotonic() + timeout_s
    while not site.address_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"the agent did not start; see {log}")
        time.sleep(0.02)
    return process


def address(site: Any) -> tuple[str, int]:
    """The host and port the site's agent serves on."""
    url = json.loads(site.address_file.read_text())["url"]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)
