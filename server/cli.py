"""``genba provision`` and ``genba server``: thin shells over server.provision and server.superlink."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    register_provision(subparsers)
    register_server(subparsers)


def register_provision(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="IT: the federation's CA, TLS certificate, signing key; a kit per enrolled site",
        description="Create a CA, the SuperLink's TLS certificate and IT's signing key; then a kit per "
        "site from the enrolment request each site makes ('add-site --request FILE').",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the IT folder to create or change"
    )
    parser.add_argument("--server-host", metavar="HOST", help="the name or IP address sites dial")
    parser.add_argument(
        "--port", type=int, default=None, help="the SuperLink's Fleet API port (default 9092)"
    )
    # --sites is gone (sites enrol by request): kept only to answer it with a one-line error.
    parser.add_argument("--sites", nargs="+", metavar="NAME", help=argparse.SUPPRESS)
    parser.set_defaults(handler=_provision)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    add = actions.add_parser(
        "add-site", help="check a site's enrolment request, issue its certificate and write its kit"
    )
    add.add_argument(
        "--request",
        type=Path,
        required=True,
        metavar="FILE",
        help="the file 'genba agent init --enrol-request' wrote at the site",
    )
    add.set_defaults(handler=_add_site)
    renew = actions.add_parser(
        "renew-certificate", help="a new SuperLink TLS certificate from the kit's CA (restart the server)"
    )
    renew.set_defaults(handler=_renew_certificate)
    revoke = actions.add_parser(
        "revoke-site", help="stop admitting a site (SuperLink and the CRL, it/crl.pem); deletes its kit here"
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_revoke_site)


def register_server(subparsers: Any) -> None:
    parser = subparsers.add_parser("server", help="IT: the federation's SuperLink and its runs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser(
        "start", help="run the SuperLink (TLS, SuperNode auth) and register the kit's sites, until Ctrl-C"
    )
    start.add_argument(
        "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
    )
    start.add_argument(
        "--bind", metavar="ADDR", help="address to listen on (default: the provisioned host if an IP)"
    )
    start.add_argument("--port", type=int, help="port to listen on (default: the provisioned port)")
    start.set_defaults(handler=_server_start)
    train = actions.add_parser(
        "train", help="a federated run: the sites fit heads, SecAgg+ sums them (SuperLink must be running)"
    )
    train.add_argument(
        "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
    )
    train.add_argument(
        "--bundle",
        type=Path,
        help="the IT-signed bundle whose head starts the run (default: the registry's newest version)",
    )
    train.add_argument("--rounds", type=int, default=3)
    train.add_argument("--min-sites", type=int, default=3, help="sites needed per round (at least 3)")
    train.add_argument(
        "--dp-noise", type=float, metavar="Z", help="site-level DP: the noise multiplier (off by default)"
    )
    train.add_argument(
        "--dp-clip", type=float, default=1.0, metavar="C", help="site-level DP: each update's L2 clip"
    )
    train.add_argument("--dp-delta", type=float, default=1e-5, metavar="D", help="site-level DP: delta")
    train.add_argument(
        "--no-deliver", action="store_true", help="keep the global bundle in the registry; send it later"
    )
    train.set_defaults(handler=_server_train)
    models = actions.add_parser("models", help="the registry: versions, lineage, runs and their rounds")
    models.add_argument(
        "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
    )
    models.set_defaults(handler=_server_models)
    for action, text in (
        ("publish", "send a registered version to every site as its candidate (no training)"),
        ("rollback", "send a new version with VERSION's files, marked as a rollback to it"),
    ):
        command = actions.add_parser(action, help=text)
        command.add_argument("version", type=int, metavar="VERSION")
        command.add_argument(
            "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
        )
        command.add_argument("--model", help="the model's name (only if the registry holds several)")
        command.add_argument(
            "--wait", type=float, default=60.0, metavar="S", help="seconds to wait for the sites to connect"
        )
        command.set_defaults(handler=_server_publish, rollback=action == "rollback")
    sites = actions.add_parser("sites", help="each site's state and the production version it last reported")
    sites.add_argument(
        "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
    )
    sites.set_defaults(handler=_server_sites)
    certificates = actions.add_parser(
        "certificates",
        help="the CA's, the SuperLink's and each site's certificate: days left, warned within 30",
    )
    certificates.add_argument(
        "--kit", type=Path, required=True, metavar="DIR", help="the folder 'genba provision' made"
    )
    certificates.set_defaults(handler=_server_certificates)


def _server_start(args: argparse.Namespace) -> int:
    from genba.tools import until_signalled
    from server.superlink import ServerConfig, SuperLink

    link = SuperLink(ServerConfig(kit=args.kit, bind=args.bind, port=args.port))
    with until_signalled() as stop, link:
        changes = link.sync_sites()
        _print_line(
            {
                "superlink": link.address,
                "listening": f"{link.bind}:{link.port}",
                "control": f"127.0.0.1:{link.upstream_port}",
                "registered": changes["registered"],
                "unregistered": changes["unregistered"],
                "sites": {name: node["state"] for name, node in changes["nodes"].items()},
                "log": str(link.server.log),
            }
        )
        link.serve(stop, on_change=_print_line)
    return 0


def _server_train(args: argparse.Namespace) -> int:
    from server.federated_run import TrainConfig, train_federated
    from server.privacy import PrivacyConfig

    privacy = None
    if args.dp_noise is not None:
        privacy = PrivacyConfig(
            noise_multiplier=args.dp_noise, clipping_norm=args.dp_clip, delta=args.dp_delta
        )
    config = TrainConfig(
        privacy=privacy,
        kit=args.kit,
        bundle=args.bundle,
        rounds=args.rounds,
        min_sites=args.min_sites,
        deliver=not args.no_deliver,
    )
    _print(train_federated(config))
    return 0


def _server_models(args: argparse.Namespace) -> int:
    from server.publish import list_models

    _print(list_models(args.kit))
    return 0


def _server_publish(args: argparse.Namespace) -> int:
    from server.publish import PublishConfig, publish

    config = PublishConfig(
        kit=args.kit, version=args.version, model=args.model, rollback=args.rollback, wait_s=args.wait
    )
    _print(publish(config))
    return 0


def _server_sites(args: argparse.Namespace) -> int:
    from server.federated_run import site_overview

    _print(site_overview(args.kit))
    return 0


def _server_certificates(args: argparse.Namespace) -> int:
    from server.certificates import certificate_report

    _print(certificate_report(args.kit))
    return 0


def _provision(args: argparse.Namespace) -> int:
    from genba.errors import UsageError
    from server.provision import DEFAULT_PORT, ProvisionConfig, provision

    if args.sites:
        raise UsageError(SITES_GONE)
    if not args.server_host:
        raise UsageError(
            "genba provision needs --server-host HOST (sites come later: add-site --request FILE)"
        )
    config = ProvisionConfig(out=args.out, server_host=args.server_host, port=args.port or DEFAULT_PORT)
    folder = provision(config)
    _print(
        {
            "it": str(folder.it),
            "ca": str(folder.ca_file),
            "crl": str(folder.crl_file),
            "next": f"each site enrols; then: genba provision --out {folder.root} add-site --request FILE",
        }
    )
    return 0


#: ``--sites`` made every site's private keys at IT; sites now make their own and send a request.
SITES_GONE = (
    "--sites is gone: IT no longer makes a site's keys; each site runs 'genba agent init --data DATA "
    "--site NAME --enrol-request FILE' and IT runs 'genba provision --out DIR add-site --request FILE'"
)


def _add_site(args: argparse.Namespace) -> int:
    from server.provision import add_site

    _refuse_creation_options(args)
    _print(add_site(args.out, args.request))
    return 0


def _revoke_site(args: argparse.Namespace) -> int:
    from server.provision import revoke_site

    _refuse_creation_options(args)
    _print({"revoked": args.name, **revoke_site(args.out, args.name)})
    return 0


def _renew_certificate(args: argparse.Namespace) -> int:
    from server.provision import renew_certificate

    _refuse_creation_options(args)
    _print(renew_certificate(args.out))
    return 0


def _refuse_creation_options(args: argparse.Namespace) -> None:
    from genba.errors import UsageError

    if args.sites:
        raise UsageError(SITES_GONE)
    if args.server_host or args.port:
        raise UsageError(f"{args.action} takes only --out DIR before it")


def _print_line(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()


def _print(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
