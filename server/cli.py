"""``genba provision``: thin shell over :mod:`server.provision`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="IT: the federation's CA, TLS certificate, signing key and one kit per site",
        description="Create a CA, the SuperLink's TLS certificate, IT's signing key and a kit per site.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the IT folder to create or change"
    )
    parser.add_argument("--server-host", metavar="HOST", help="the name or IP address sites dial")
    parser.add_argument(
        "--port", type=int, default=None, help="the SuperLink's Fleet API port (default 9092)"
    )
    parser.add_argument("--sites", nargs="+", metavar="NAME", help="one kit per site")
    parser.set_defaults(handler=_provision)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    add = actions.add_parser("add-site", help="a kit for one more site")
    add.add_argument("name", metavar="NAME")
    add.set_defaults(handler=_add_site)
    revoke = actions.add_parser("revoke-site", help="stop admitting a site's SuperNode; deletes its kit here")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_revoke_site)


def _provision(args: argparse.Namespace) -> int:
    from genba.errors import UsageError
    from server.provision import DEFAULT_PORT, ProvisionConfig, provision

    if not args.server_host or not args.sites:
        raise UsageError("genba provision needs --server-host HOST and --sites NAME [NAME ...]")
    config = ProvisionConfig(
        out=args.out, server_host=args.server_host, sites=tuple(args.sites), port=args.port or DEFAULT_PORT
    )
    folder = provision(config)
    _print({"it": str(folder.it), "kits": {name: str(folder.kits / name) for name in config.sites}})
    return 0


def _add_site(args: argparse.Namespace) -> int:
    from server.provision import add_site

    _refuse_creation_options(args)
    _print({"kit": str(add_site(args.out, args.name))})
    return 0


def _revoke_site(args: argparse.Namespace) -> int:
    from server.provision import revoke_site

    _refuse_creation_options(args)
    _print({"revoked": args.name, **revoke_site(args.out, args.name)})
    return 0


def _refuse_creation_options(args: argparse.Namespace) -> None:
    from genba.errors import UsageError

    if args.server_host or args.sites or args.port:
        raise UsageError(f"{args.action} takes only --out DIR and a site name")


def _print(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
