"""``genba gui``: the operator app for one site folder (PySide6 is imported only when it opens)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from genba.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gui", help="open the operator app for a site (the agent must be serving)")
    parser.add_argument(
        "--data", type=Path, required=True, help="the site folder ('genba agent init --data')"
    )
    parser.add_argument(
        "--role", choices=("operator", "supervisor", "integration"),
        help="sign in as this role (default: the most capable whose token you may read)",
    )  # fmt: skip
    parser.add_argument("--lang", choices=("en", "ja"), help="language (default: the system's)")
    parser.add_argument(
        "--check", action="store_true",
        help="open the app, load the agent's status and the review queue, print one line and exit "
        "(non-zero when the agent does not answer)",
    )  # fmt: skip
    parser.set_defaults(handler=_gui)


def _gui(args: argparse.Namespace) -> int:
    require_display()
    from edge_agent.site import SiteFolder
    from gui.app import run
    from gui.config import GuiConfig

    SiteFolder(args.data).require_initialized()
    config = GuiConfig(data=args.data, role=args.role, language=args.lang)
    if args.check:
        from gui.check import run_check

        print(run_check(config), flush=True)
        return 0
    return run(config)


def require_display() -> None:
    """Qt aborts the process without a display; say so in one line instead."""
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise UsageError(
        "no display to open the app on; run 'genba gui' on the PC's desktop "
        "(or set QT_QPA_PLATFORM=offscreen for a check without a screen)"
    )
