"""The site's ClientApp process: long-lived, one message at a time, and only app code the site approved.

Flower 1.42's ``flower-supernode --isolation process`` starts no ClientApp of its own: each message
it pulls becomes a task on its Runtime API (loopback), and a separate process claims it
(``AcquireTask``, signed with the secret in ``--superexec-auth-secret-file``), then pulls the
message, its context and the run's FAB with the task's token, runs the ClientApp and pushes the
reply. Flower's ``flower-superexec`` starts a fresh ``flwr-clientapp`` for every task, importing
Flower, Genba and torch again each time (seconds per message). Instead, the site's SuperNode
(:mod:`edge_agent.federation.supernode_launch`) starts this module as its child: one process that
claims the tasks itself and serves them in process, so imports, the backbone and cached
embeddings stay loaded from one message to the next. ``ClientAppProcess``
(:mod:`edge_agent.federation.clientapp_process`) starts it again if it dies; it ends with its
SuperNode (same process group; it also watches its parent). The
SuperNode writes a line to its standard input when a message is in whole (after it confirmed the
message to the SuperLink), so the task is claimed at once rather than polled for.

Pinned by construction: this is the only process that holds the secret the SuperNode's tasks are
claimed with (a new one per join, in the site folder, readable by the site's user only), and it
installs and runs a FAB only if the SHA-256 of its content is approved: the FAB this Genba
installation builds (``genba.federation``), plus hashes listed in ``DATA/federation/approved-fabs``.
A refusal is audited and answered with a ledgered error; nothing of the FAB is installed or run.
Every reply, whichever approved app made it, leaves through the egress ledger's mod.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APPROVED_ENV = "GENBA_APPROVED_FABS"
SITE_ENV = "GENBA_SITE_DATA"
RUNTIME_ENV = "GENBA_RUNTIME_API"
SECRET_ENV = "GENBA_TASK_SECRET_FILE"
#: After the SuperNode's nudge (a message is in), a task is asked for every ACTIVE_POLL_S, at most
#: NUDGED_CLAIMS times; otherwise every IDLE_POLL_S (a nudge that never came costs that much).
ACTIVE_POLL_S = 0.01
NUDGED_CLAIMS = 100
IDLE_POLL_S = 0.5
#: First wait before asking the SuperNode again for an object it does not hold yet (Flower: 1 s).
PULL_BACKOFF_S = 0.02
#: The Runtime API call only the holder of the task secret may make.
ACQUIRE_TASK = "/flwr.proto.Runtime/AcquireTask"

log = logging.getLogger(__name__)


class UnapprovedAppError(RuntimeError):
    """The SuperLink sent app code this site has not approved."""


@dataclass(frozen=True)
class ClientAppConfig:
    runtime_api: str  # host:port of the SuperNode's Runtime API (loopback, plain HTTP)
    site: Path
    approved: frozenset[str]
    secret_file: Path
    active_poll_s: float = ACTIVE_POLL_S
    idle_poll_s: float = IDLE_POLL_S

    @classmethod
    def from_environment(cls, environ: Any = os.environ) -> ClientAppConfig:
        """What the site's SuperNode put in the environment; a missing entry is a one-line error."""
        missing = [
            name for name in (RUNTIME_ENV, SITE_ENV, SECRET_ENV, APPROVED_ENV) if not environ.get(name)
        ]
        if missing:
            raise SystemExit(
                f"{', '.join(missing)} not set: the site's ClientApp is started by 'genba agent join' only"
            )
        return cls(
            runtime_api=environ[RUNTIME_ENV],
            site=Path(environ[SITE_ENV]),
            approved=frozenset(h for h in environ[APPROVED_ENV].split(",") if h),
            secret_file=Path(environ[SECRET_ENV]),
        )


def serve(
    config: ClientAppConfig, stop: threading.Event, wait: Callable[[float], bool] | None = None
) -> None:
    """Claim the SuperNode's ClientApp tasks and run each in this process, until ``stop`` is set.

    ``wait(seconds)`` returns True early when the SuperNode says a message is in (its nudge); the
    task is then claimed within ``active_poll_s``. Without a nudge it is asked for every ``idle_poll_s``.
    """
    apps = PinnedApps(config.approved, config.site)
    claim = _task_claimer(config)
    wait = wait or stop.wait
    quick = 0  # claims left to try quickly after a nudge
    while not stop.is_set():
        token = claim()
        if token is None:
            if quick:
                quick -= 1
                time.sleep(config.active_poll_s)
            elif wait(config.idle_poll_s):
                quick = NUDGED_CLAIMS
            continue
        quick = 0  # the nudge is answered: the next message nudges again
        try:
            run_task(config, token, apps)
        except Exception:  # the message is lost; the SuperNode answers it "ClientApp stopped responding"
            log.exception("a ClientApp task ended without a reply")


def _task_claimer(config: ClientAppConfig) -> Any:
    import httpx
    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=config.runtime_api,
        insecure=True,  # the SuperNode's Runtime API listens on loopback only
        root_certificates=None,
        interceptors=[
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            SuperExecAuthHttpInterceptor(
                master_secret=config.secret_file.read_bytes(), protected_methods={ACQUIRE_TASK}
            ),
        ],
    )
    request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])

    def claim() -> str | None:
        try:
            response = client.AcquireTask(request)
        except httpx.HTTPError:  # the SuperNode is starting, or going away
            return None
        return str(response.token) if response.HasField("task") and response.token else None

    return claim


def run_task(config: ClientAppConfig, token: str, apps: PinnedApps) -> None:
    """One task, as Flower's ``flwr-clientapp`` runs it, in this process: pull, answer, push.

    A call to the SuperNode that fails in transport is tried again (:func:`_transport_retry`): a
    connection the SuperNode's server closed while the site trained (its keep-alive is 5 s) must
    not lose the reply. A task that fails anyway is reported failed, so the SuperNode answers the message with
    an error at once rather than waiting for the task to time out.
    """
    from flwr.common.constant import SubStatus
    from flwr.supercore.heartbeat import HeartbeatSender
    from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

    retry = _transport_retry()
    client = RuntimeHttpClient.from_server_address(
        server_address=config.runtime_api,
        insecure=True,
        root_certificates=None,
        interceptors=[
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(token),
        ],
        retry_invoker=retry,
    )
    heartbeat = HeartbeatSender(_task_heartbeat(client))
    heartbeat.start()
    context = None
    try:
        times = [time.perf_counter()]
        message, context, run, fab = pull_task_input(client)
        times.append(time.perf_counter())
        reply = answer(message, context, run, fab, apps)
        times.append(time.perf_counter())
        push_message(client, reply, context)
        push_task_output(client, context, SubStatus.COMPLETED, "")
        times.append(time.perf_counter())
    except BaseException:
        retry.max_tries = 1
        with contextlib.suppress(Exception):  # the SuperNode may be gone: nothing more to tell it
            push_task_output(client, context, SubStatus.FAILED, "the site's ClientApp failed on this message")
        raise
    finally:
        heartbeat.stop()
        client.close()
    pull, work, push = (round(1000 * (b - a)) for a, b in zip(times, times[1:], strict=False))
    log.info(
        "%s message of round %s: pulled in %d ms, answered in %d ms (%s), pushed in %d ms",
        message.metadata.message_type, message.metadata.group_id or "-", pull, work,
        "error" if reply.has_error() else "reply", push,
    )  # fmt: skip


def _transport_retry() -> Any:
    """Up to 5 tries, backing off from 50 ms, for connection errors only.

    Not Flower's ``make_simple_http_retry_invoker``: it interrupts its own process on a 401, which
    ends a one-task ``flwr-clientapp`` but would end this long-lived one with every later task."""
    import httpx
    from flwr.supercore.retry.retry_invoker import RetryInvoker, exponential

    transport = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
    return RetryInvoker(
        lambda: exponential(base_delay=0.05, multiplier=2.0, max_delay=1),
        transport,
        max_tries=5,
        max_time=30.0,
    )


def pull_task_input(client: Any) -> tuple[Any, Any, Any, Any]:
    """Flower's ``pull_task_input``, retrying an object the SuperNode does not hold yet after
    PULL_BACKOFF_S rather than Flower's 1 s, doubling up to 0.5 s.

    The task exists as soon as the SuperNode has the message, before it has pulled the message's
    objects from the SuperLink; with Flower's backoff every message waited a second or more here.
    """
    from flwr.app import Message
    from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
    from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
    from flwr.proto.runtime_pb2 import PullAppMessagesRequest, PullTaskInputRequest  # pylint: disable=E0611
    from flwr.supercore.inflatable.inflatable_protobuf_utils import (
        make_confirm_message_received_fn_protobuf,
        make_pull_object_fn_protobuf,
    )
    from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
    from flwr.supercore.task_identity import TaskIdentity

    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = (
        task.task_id, task.run.run_id, task.context.node_id
    )  # fmt: skip
    context, run, fab = context_from_proto(task.context), run_from_proto(task.run), fab_from_proto(task.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode handed over a task without its message")
    node, tree = Node(node_id=context.node_id), pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
        return_type=Message,
        max_tries_per_object=None,
        initial_backoff=PULL_BACKOFF_S,
        backoff_cap=0.5,
    )
    message.metadata.__dict__["_message_id"] = tree.object_id  # as Flower sets it: not part of the tree
    return message, context, run, fab


def _task_heartbeat(client: Any) -> Any:
    """Flower's task heartbeat, except that a task the SuperNode no longer knows ends nothing here."""
    import httpx
    from flwr.proto.runtime_pb2 import SendTaskHeartbeatRequest  # pylint: disable=E0611

    def beat() -> bool:
        try:
            client.SendTaskHeartbeat(SendTaskHeartbeatRequest())
        except httpx.HTTPError:
            return False
        return True

    return beat


def answer(message: Any, context: Any, run: Any, fab: Any, apps: PinnedApps) -> Any:
    """The reply to one message: the approved app's, or a ledgered error; never an unledgered byte."""
    from edge_agent.federation import client_app as genba
    from genba.protocol import ERROR_APP_NOT_APPROVED, ERROR_FAILED

    try:
        app = apps.load(fab, run)
    except UnapprovedAppError as refused:
        return genba.error_reply(message, context, ERROR_APP_NOT_APPROVED, cause=refused)
    except Exception as failed:
        return genba.error_reply(message, context, ERROR_FAILED, cause=failed)
    try:
        if app is genba.app:  # Genba's own ClientApp ledgers every reply itself (its outermost mod)
            return app(message=message, context=context)
        # Another approved app's replies pass the same check and ledger.
        return genba.egress_ledger_mod(message, context, lambda m, c: app(message=m, context=c))
    except Exception as failed:  # outside the app's mods: its lifespan, Flower's dispatch
        return genba.error_reply(message, context, ERROR_FAILED, cause=failed)


class PinnedApps:
    """Approved FABs, installed once and loaded once; a FAB that is not approved is never installed."""

    def __init__(self, approved: frozenset[str], site: Path | None) -> None:
        self.approved = approved
        self.site = site
        self._loaded: tuple[str, Any, str, str] | None = None  # digest, app, module root, app folder

    def load(self, fab: Any, run: Any) -> Any:
        digest = hashlib.sha256(fab.content).hexdigest()
        if digest not in self.approved or fab.hash_str != digest:
            self._audit_refusal(digest)
            raise UnapprovedAppError(
                f"the SuperLink sent a Flower app (FAB sha256 {digest[:16]}...) this site has not approved; "
                "it was not installed or run"
            )
        if self._loaded is not None and self._loaded[0] == digest:
            return self._loaded[1]
        return self._install_and_load(fab, run, digest)

    def _install_and_load(self, fab: Any, run: Any, digest: str) -> Any:
        from flwr.cli.install import install_from_fab
        from flwr.clientapp.utils import get_load_client_app_fn
        from flwr.common.config import get_project_config, get_project_dir

        install_from_fab(fab.content, skip_prompt=True)
        folder = get_project_dir(run.fab_id, run.fab_version, digest)
        reference = get_project_config(folder)["tool"]["flwr"]["app"]["components"]["clientapp"]
        self._forget_loaded()
        app = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)(
            run.fab_id, run.fab_version, digest
        )
        self._loaded = (digest, app, reference.split(":")[0].split(".")[0], str(folder.absolute()))
        return app

    def _forget_loaded(self) -> None:
        """Another approved FAB was loaded before: drop its modules, so this one's are imported afresh."""
        if self._loaded is None:
            return
        _, _, root, folder = self._loaded
        for name in [n for n in sys.modules if n == root or n.startswith(root + ".")]:
            del sys.modules[name]
        while folder in sys.path:
            sys.path.remove(folder)
        self._loaded = None

    def _audit_refusal(self, digest: str) -> None:
        if self.site is None:
            return
        from edge_agent.site import SiteFolder
        from edge_agent.store import SiteStore

        with SiteStore(SiteFolder(self.site).store_file) as store:
            store.append_audit("federated_app_refused", "federation", {"fab_sha256": digest})


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The site's ClientApp process (started by 'genba agent join')."
    )
    parser.add_argument("--parent-pid", type=int, help="end when this process (the SuperNode) ends")
    args = parser.parse_args()
    from genba import env  # noqa: F401  (telemetry off before Flower, ONNX Runtime or torch load)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # one line per Runtime API call otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    config = ClientAppConfig.from_environment()
    if args.parent_pid is not None:
        from flwr.supercore.app_utils import start_parent_process_monitor

        start_parent_process_monitor(args.parent_pid)
    _preload()
    stop = threading.Event()
    try:
        serve(config, stop, _nudges(stop))
    except KeyboardInterrupt:  # the SuperNode ended (the parent monitor's signal)
        pass


def _nudges(stop: threading.Event) -> Callable[[float], bool]:
    """Wait on standard input, where the SuperNode writes a line for each message that came in."""
    import select

    def wait(seconds: float) -> bool:
        if sys.stdin.closed:
            return stop.wait(seconds)
        ready, _, _ = select.select([sys.stdin], [], [], seconds)
        if not ready:
            return False
        if not os.read(sys.stdin.fileno(), 4096):  # the SuperNode closed it: poll from now on
            sys.stdin.close()
        return True

    return wait


def _preload() -> None:
    """Import what every message needs once, before the first one arrives."""
    import flwr.cli.install
    import flwr.clientapp.utils  # noqa: F401

    import edge_agent.federation.client_app  # noqa: F401


if __name__ == "__main__":
    main()
