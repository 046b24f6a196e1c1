"""``genba package``: offline kits for plants (thin shells over genba.wheelhouse and genba.usb_kit)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genba.errors import UsageError


def register(subparsers: Any) -> None:
    package = subparsers.add_parser(
        "package", help="build offline kits: a role's wheelhouse, a site's USB kit"
    )
    actions = package.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_wheelhouse(actions)
    _register_usb_kit(actions)


def _register_wheelhouse(actions: Any) -> None:
    from genba.wheelhouse import DEFAULT_GLIBC, DEFAULT_PYTHONS, ROLES, TORCH_CPU_INDEX, TORCH_VERSION

    wheelhouse = actions.add_parser(
        "wheelhouse", help="download every wheel a role needs (Linux x86_64), pinned by sha256"
    )
    wheelhouse.add_argument(
        "--role",
        required=True,
        help=f"one role, or several resolved together (site,gui); roles: {', '.join(ROLES)}",
    )
    wheelhouse.add_argument("--out", type=Path, required=True, help="a new folder for the wheelhouse")
    wheelhouse.add_argument(
        "--project", type=Path, default=Path("."), help="Genba's source tree (default: .)"
    )
    wheelhouse.add_argument(
        "--python",
        action="append",
        help=f"target Python MAJOR.MINOR, repeatable (default: {' '.join(DEFAULT_PYTHONS)})",
    )
    wheelhouse.add_argument("--glibc", default=DEFAULT_GLIBC, help="the oldest glibc of the target PCs")
    wheelhouse.add_argument(
        "--torch", choices=("cpu", "cuda"), default="cpu",
        help="roles with torch: its CPU build (default) or PyPI's multi-GB CUDA build",
    )  # fmt: skip
    wheelhouse.add_argument("--torch-version", default=TORCH_VERSION, help="the CPU build's version")
    wheelhouse.add_argument(
        "--torch-source", default=TORCH_CPU_INDEX, help="index URL or folder holding the CPU build's wheels"
    )
    wheelhouse.add_argument("--find-links", type=Path, action="append", default=[], help="a folder of wheels")
    wheelhouse.add_argument(
        "--offline", action="store_true", help="no index: take wheels from --find-links only"
    )
    wheelhouse.set_defaults(handler=_wheelhouse)


def _wheelhouse(args: argparse.Namespace) -> int:
    from genba.wheelhouse import DEFAULT_PYTHONS, WheelhouseConfig, build_wheelhouse

    config = WheelhouseConfig(
        roles=tuple(role.strip() for role in args.role.split(",") if role.strip()),
        out=args.out,
        project=args.project,
        pythons=tuple(args.python or DEFAULT_PYTHONS),
        glibc=args.glibc,
        torch=args.torch,
        torch_version=args.torch_version,
        torch_source=args.torch_source,
        find_links=tuple(args.find_links),
        offline=args.offline,
    )
    print(json.dumps(build_wheelhouse(config)))
    return 0


def _register_usb_kit(actions: Any) -> None:
    kit = actions.add_parser("usb-kit", help="bundle a wheelhouse, a site kit and bundles with the installer")
    kit.add_argument("--wheelhouse", type=Path, required=True, help="made by 'genba package wheelhouse'")
    kit.add_argument("--site-kit", type=Path, help="the site's kit from 'genba provision add-site'")
    kit.add_argument("--bundle", type=Path, action="append", default=[], help="a signed bundle (repeatable)")
    kit.add_argument(
        "--trust", type=Path, action="append", default=[], help="a signer's public key (no site kit)"
    )
    kit.add_argument("--out", type=Path, required=True, help="a new folder for the kit (the USB stick)")
    kit.set_defaults(handler=_usb_kit)


def _usb_kit(args: argparse.Namespace) -> int:
    from genba.usb_kit import UsbKitConfig, build_usb_kit

    if not args.site_kit and not args.bundle and not args.trust:
        raise UsageError(
            "a USB kit carries a site kit, bundles or trusted keys besides the wheelhouse; pass one"
        )
    config = UsbKitConfig(
        wheelhouse=args.wheelhouse,
        out=args.out,
        site_kit=args.site_kit,
        bundles=tuple(args.bundle),
        trust=tuple(args.trust),
    )
    print(json.dumps(build_usb_kit(config)))
    return 0
