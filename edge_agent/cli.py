"""``genba agent``: create a site, serve it, and manage its models (a shell over the library).

``status``, ``install``, ``promote`` and ``rollback`` talk to the running agent
through its local API. When no agent is running they work on the site folder
directly (holding its lock), so a site can be prepared before its first start;
that needs read access to the supervisor token, the same right the API asks for.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANAGE = ("install", "promote", "discard", "rollback")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "agent", help="the site agent: init, serve, status, install, promote, discard, rollback, backup"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    init = actions.add_parser(
        "init",
        help="create a site folder: enrol (the site's own keys, a request for IT), finish from the kit, "
        "or standalone",
    )
    _data(init)
    source = init.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--enrol-request",
        type=Path,
        metavar="FILE",
        help="federation, step 1: make this site's keys in DATA and write the request for IT to FILE",
    )
    source.add_argument(
        "--kit", type=Path, help="federation, step 2: the kit IT made from this site's request"
    )
    source.add_argument(
        "--trust",
        type=Path,
        action="append",
        help="standalone: trusted bundle signer public key (repeatable)",
    )
    init.add_argument("--site", help="site name (needed to enrol; default: the kit's, or 'site')")
    init.set_defaults(handler=_init)

    serve = actions.add_parser("serve", help="serve the local API on loopback until stopped (Ctrl-C)")
    _data(serve)
    serve.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default from agent.toml; 0 = any)")
    serve.add_argument("--provider", choices=("auto", "gpu", "cpu"), help="override [runtime] provider")
    serve.set_defaults(handler=_serve)

    status = actions.add_parser("status", help="models, stage, gates, provider and versions")
    _data(status)
    status.set_defaults(handler=_status)

    install = actions.add_parser("install", help="verify a bundle and make it the candidate (in shadow)")
    _data(install)
    install.add_argument("bundle", type=Path, help="bundle directory, .tar or .zip")
    install.add_argument("--rollback", action="store_true", help="allow a version older than production")
    install.set_defaults(handler=_install)

    promote = actions.add_parser("promote", help="move the candidate to its next stage (supervisor)")
    _data(promote)
    promote.add_argument("--to", choices=("pilot", "production"), help="target stage (default: the next one)")
    promote.set_defaults(handler=_promote)

    discard = actions.add_parser("discard", help="remove the candidate from its slot (supervisor)")
    _data(discard)
    discard.add_argument("--reason", help="why, for the audit log")
    discard.set_defaults(handler=_discard)

    rollback = actions.add_parser("rollback", help="put the previous production model back (supervisor)")
    _data(rollback)
    rollback.add_argument("--version", help="an installed version (3 or 3.1) instead of the previous one")
    rollback.set_defaults(handler=_rollback)
    _register_learning(actions)
    _register_report(actions)
    join = actions.add_parser(
        "join", help="take part in federated training: run this site's SuperNode until Ctrl-C"
    )
    _data(join)
    join.add_argument("--superlink", metavar="HOST:PORT", help="override the kit's SuperLink address")
    join.set_defaults(handler=_join)


def _register_learning(actions: Any) -> None:
    from edge_agent.training_modes import TRAINING_MODES, UNLABELLED

    train = actions.add_parser(
        "train", help="fine-tune on the site's labels; the result enters shadow (supervisor)"
    )
    _data(train)
    train.add_argument(
        "--mode",
        choices=TRAINING_MODES,
        default="head",
        help="head: a new head on cached embeddings (seconds); "
        "last-k: the top blocks fine-tuned with the head, then re-exported (minutes); "
        "contrastive: the top blocks taught the classes from pairs of labels (SetFit), then a head, "
        "re-exported (minutes); auto: head and last-k cross-validated on the labels, the best "
        "trained if every label's answers show it better than production beyond luck (nothing otherwise)",
    )
    train.add_argument(
        "--unlabelled",
        choices=UNLABELLED,
        default="off",
        help="the site's unlabelled reports: adapt (last-k, contrastive, auto): the encoder adapts to "
        "them first (SimCSE); pseudo (head): production's sure answers count as half labels",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-wait", action="store_true", help="return once the job has started")
    train.set_defaults(handler=_train)
    drift = actions.add_parser(
        "drift", help="production's drift status; --rebaseline accepts a shift (supervisor)"
    )
    _data(drift)
    drift.add_argument(
        "--rebaseline",
        action="store_true",
        help="the traffic now is normal: the next windows become the reference",
    )
    drift.add_argument("--reason", help="why, for the audit log (with --rebaseline)")
    drift.set_defaults(handler=_drift)
    queue = actions.add_parser("queue", help="the items whose labels would help the model most")
    _data(queue)
    queue.add_argument("--limit", type=int, default=20)
    queue.set_defaults(handler=_queue)


def _register_report(actions: Any) -> None:
    backup = actions.add_parser(
        "backup",
        help="write the whole site (store, models, keys, tokens, configuration) to one archive, "
        "also while the agent serves",
    )
    _data(backup)
    backup.add_argument("--out", type=Path, required=True, help="a new .tar, .tar.gz or .tgz file")
    backup.set_defaults(handler=_backup)
    restore = actions.add_parser(
        "restore", help="unpack a backup into a new site folder, verified (integrity, hash chains) first"
    )
    restore.add_argument(
        "backup_file", type=Path, metavar="FILE", help="the archive 'genba agent backup' wrote"
    )
    _data(restore)
    restore.set_defaults(handler=_restore)

    report = actions.add_parser(
        "report", help="the KPI report (JSON, Markdown, PNG plots) from the site store; no agent needed"
    )
    _data(report)
    report.add_argument("--days", type=int, default=30, help="UTC days, today included (default: 30)")
    report.add_argument(
        "--out", type=Path, help="folder for report.json, report.md and the plots (default: DATA/reports/DAY)"
    )
    report.add_argument("--json", action="store_true", help="print the whole report as JSON, not a summary")
    report.set_defaults(handler=_report)


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="the site's data folder")


def _init(args: argparse.Namespace) -> int:
    import sys

    from edge_agent.site_init import enrol_site, init_site
    from genba.errors import UsageError

    if args.enrol_request is not None:
        if not args.site:
            raise UsageError("--enrol-request needs --site NAME: the name IT will know this site by")
        enrolled = enrol_site(args.data, args.site, args.enrol_request)
        next_step = (
            f"send {enrolled['request']} to IT, confirm fingerprint {enrolled['fingerprint']} with IT, then "
            f"run 'genba agent init --data {enrolled['data']} --kit KIT' with the kit IT sends back"
        )
        sys.stdout.write(json.dumps({**enrolled, "next": next_step}) + "\n")
        return 0
    site = init_site(args.data, site_name=args.site, trust=args.trust, kit=args.kit)
    _print(
        {"data": str(site.root), "tokens": {p.stem: str(p) for p in sorted(site.tokens_dir.glob("*.token"))}}
    )
    return 0


def _backup(args: argparse.Namespace) -> int:
    from edge_agent.backup import backup
    from edge_agent.site import SiteFolder

    _print(backup(SiteFolder(args.data), args.out))
    return 0


def _restore(args: argparse.Namespace) -> int:
    from edge_agent.backup import restore

    _print(restore(args.backup_file, args.data))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from edge_agent.config import load_agent_config
    from edge_agent.service.server import serve
    from edge_agent.site import SiteFolder

    site = SiteFolder(args.data).require_initialized()
    overrides: dict[str, dict[str, Any]] = {"api": {}, "runtime": {}}
    if args.port is not None:
        overrides["api"]["port"] = args.port
    if args.provider:
        overrides["runtime"]["provider"] = args.provider
    serve(site, load_agent_config(site.config_file, overrides))
    return 0


def _join(args: argparse.Namespace) -> int:
    import sys

    from edge_agent.federation.supernode import JoinConfig, SuperNode
    from genba.tools import until_signalled

    node = SuperNode(JoinConfig(data=args.data, superlink=args.superlink))
    with until_signalled() as stop, node:
        _print({"site": args.data.name, "superlink": node.superlink, "log": str(node.log)})
        sys.stdout.flush()
        while not stop.wait(0.5) and node.running():
            pass
        if not stop.is_set():
            node.wait()
    return 0


def _status(args: argparse.Namespace) -> int:
    _print(_run(args.data, lambda client: client.status(), lambda agent: agent.status(), manage=False))
    return 0


def _install(args: argparse.Namespace) -> int:
    bundle = args.bundle.resolve()
    _print(
        _run(
            args.data,
            lambda c: c.install(bundle, rollback=args.rollback),
            lambda a: a.install(bundle, actor="supervisor", rollback=args.rollback),
        )
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    _print(
        _run(
            args.data, lambda c: c.promote(args.to), lambda a: a.promote(actor="supervisor", to_stage=args.to)
        )
    )
    return 0


def _drift(args: argparse.Namespace) -> int:
    if args.rebaseline:
        reason = args.reason
        _print(
            _run(
                args.data,
                lambda c: c.rebaseline_drift(reason),
                lambda a: a.rebaseline_drift(actor="supervisor", reason=reason),
            )
        )
    else:
        _print(_run(args.data, lambda c: c.drift(), lambda a: a.drift_status(), manage=False))
    return 0


def _discard(args: argparse.Namespace) -> int:
    _print(
        _run(
            args.data,
            lambda c: c.discard(args.reason),
            lambda a: a.discard(actor="supervisor", reason=args.reason),
        )
    )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from genba.versions import ModelVersion

    version = None if args.version is None else ModelVersion.parse(args.version)
    _print(
        _run(
            args.data,
            lambda c: c.rollback(None if version is None else str(version)),
            lambda a: a.rollback(actor="supervisor", version=version),
        )
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    _print(_run(args.data, lambda c: _train_online(c, args), lambda a: _train_offline(a, args)))
    return 0


def _train_online(client: Any, args: argparse.Namespace) -> Any:
    import time

    job = client.train(args.mode, args.seed, args.unlabelled)
    while not args.no_wait and job.state == "running":
        time.sleep(1.0)
        job = client.training() or job
    if job.state == "failed":
        from edge_agent.jobs import TrainingFailedError

        raise TrainingFailedError(job.message or "training failed")
    return job


def _train_offline(agent: Any, args: argparse.Namespace) -> Any:
    import time

    from edge_agent.jobs import train_and_install

    label = time.strftime("%Y%m%d-%H%M%S")

    return train_and_install(
        agent.site,
        agent.store,
        agent.install,
        mode=args.mode,
        seed=args.seed,
        actor="supervisor",
        label=label,
        unlabelled=args.unlabelled,
    )


def _queue(args: argparse.Namespace) -> int:
    def online(client: Any) -> Any:
        return [entry.model_dump(mode="json") for entry in client.queue(args.limit)]

    def offline(agent: Any) -> Any:
        from edge_agent.labelling import queue_entry

        return [queue_entry(q) for q in agent.queue(args.limit)]

    _print(_run(args.data, online, offline, manage=False))
    return 0


def _report(args: argparse.Namespace) -> int:
    import time

    from edge_agent.config import load_agent_config
    from edge_agent.report import build_report, summary_lines, why_no_plots, write_report
    from edge_agent.site import SiteFolder
    from edge_agent.store import SiteStore
    from edge_agent.store.kpi import utc_day
    from genba.errors import UsageError

    if args.days < 1:
        raise UsageError(f"--days must be at least 1, not {args.days}")
    site = SiteFolder(args.data).require_initialized()
    config = load_agent_config(site.config_file)
    if not site.store_file.is_file():
        raise UsageError(f"{site.root} has no site store yet; start the agent once ('genba agent serve')")
    now = time.time()
    with SiteStore.read_only(site.store_file) as store:  # reads beside a running agent, never blocks it
        report = build_report(store, config.costs, days=args.days, now=now, site=config.site)
    out = args.out if args.out is not None else site.root / "reports" / utc_day(now)
    written = write_report(report, out)
    if args.json:
        _print(report)
    else:
        files = ", ".join(path.name for path in written.values())
        no_plots = why_no_plots()
        plots = [f"No plots: {no_plots}"] if no_plots else []
        print("\n".join([*summary_lines(report), f"Written to {out}: {files}", *plots]))
    return 0


def _run(data: Path, online: Callable[[Any], Any], offline: Callable[[Any], Any], manage: bool = True) -> Any:
    from edge_agent.operate import on_site

    return on_site(data, online, offline, manage)


def _print(payload: Any) -> None:
    """JSON on stdout: the agent's answer (a response model, online) or the offline agent's dict."""
    from pydantic import BaseModel

    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    print(json.dumps(payload, indent=2, default=str))
