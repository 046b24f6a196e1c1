"""The site's SuperNode on the wire: every byte it sends and receives, counted per round.

Runs in the SuperNode's own process (:mod:`edge_agent.federation.supernode_launch`). Every
connection Flower's Fleet client opens does its TLS through :class:`CountedTLS` (Python's ``ssl``
memory BIOs), so what is counted is the TCP payload each way: TLS handshakes and records, HTTP
headers and bodies, what anyone on the path sees. An interceptor on the same client reads the run
and round of each message the SuperNode pulls; bytes count toward the round of the newest message
pulled (the polling that waits for the next round belongs to the round before it), and bytes
before the first message (activation, the first polls) toward ``start``.

``DATA/federation/traffic.json`` holds the totals by round, rewritten within a second of a change
and when the SuperNode ends; :mod:`edge_agent.federation.traffic_report` reads it for the agent's
status. Once the SuperNode is leaving (Flower's exit handlers ran), every byte is written as it
passes: Flower ends a SuperNode whose exit takes over 5 s with ``os._exit``, which runs no exit
handler, and its goodbye (``DeactivateNode``) must still be in the file.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from edge_agent.federation.traffic_report import traffic_file

#: Rounds kept in the traffic file (the newest).
KEPT_ROUNDS = 500
START = "start"
_READ_SIZE = 65536
#: A connection that ended without TLS closing it: the network dropped it, and the call is retried.
DROPPED = "the connection to the SuperLink dropped mid-exchange"


class Tally:
    """Bytes each way and requests by call, per (run, round); thread-safe; written to ``path``."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        # Re-entrant: Flower's exit handlers (``leaving``) run in a signal handler, which may interrupt
        # this thread inside either lock.
        self._lock = threading.RLock()
        self._rounds: dict[str, dict[str, Any]] = {}
        self._key = START
        self._dirty = threading.Event()
        self._writing = threading.RLock()
        self._leaving = False
        self._entry(START, None, None)

    def sent(self, count: int) -> None:
        self._add("sent", count)

    def received(self, count: int) -> None:
        self._add("received", count)

    def request(self, call: str, seconds: float) -> None:
        """One ``call`` to the SuperLink that took ``seconds`` (answer included)."""
        with self._lock:
            entry = self._rounds[self._key]
            entry["requests"][call] = entry["requests"].get(call, 0) + 1
            entry["seconds"][call] = round(entry["seconds"].get(call, 0.0) + seconds, 4)

    def message(self, run: int, group: str) -> None:
        """A message of ``run``, round ``group`` was pulled: bytes from now on count toward it."""
        key = f"{run}/{group}"
        with self._lock:
            if key not in self._rounds:
                self._entry(key, run, group)
            self._key = key
        self._dirty.set()

    def rounds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(entry, requests=dict(entry["requests"]), seconds=dict(entry["seconds"]))
                for entry in self._rounds.values()
            ]

    def write(self) -> None:
        """Rewrite the traffic file atomically (the newest KEPT_ROUNDS rounds)."""
        with self._writing:
            self._dirty.clear()
            document = {
                "updated_at": self._clock(),
                "pid": os.getpid(),
                "rounds": self.rounds()[-KEPT_ROUNDS:],
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(document), encoding="utf-8")
            os.replace(temporary, self.path)

    def leaving(self) -> None:
        """The process is ending: write now, and from now on after every byte counted."""
        self._leaving = True
        self.write()

    def keep_written(self, every_s: float = 1.0) -> None:
        """Write within ``every_s`` of a change, and once more when the process ends."""

        def loop() -> None:
            while True:
                self._dirty.wait()
                time.sleep(every_s)
                self.write()

        threading.Thread(target=loop, name="genba-traffic", daemon=True).start()
        atexit.register(self.write)

    def _add(self, field: str, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            entry = self._rounds[self._key]
            entry[field] += count
            entry["last_at"] = self._clock()
        self._dirty.set()
        if self._leaving:
            self.write()

    def _entry(self, key: str, run: int | None, group: str | None) -> None:
        now = self._clock()
        self._rounds[key] = {"run": run, "round": group, "sent": 0, "received": 0, "requests": {},
                             "seconds": {}, "first_at": now, "last_at": now}  # fmt: skip


class RoundInterceptor:
    """On the Fleet client: counts and times calls; tells the tally (and ``on_message``) of each message."""

    def __init__(
        self,
        tally: Tally,
        on_message: Callable[[], None] | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.tally = tally
        self.on_message = on_message
        self.on_stored = on_stored  # the SuperNode holds a message whole: its ClientApp may take it

    def intercept(self, context: Any, call_next: Any) -> Any:
        call = str(context.rpc_method).rsplit("/", 1)[-1]
        started = time.perf_counter()
        response = call_next(context)
        self.tally.request(call, time.perf_counter() - started)
        moved = call == "PushMessages" or (call == "PullMessages" and self._note_message(response))
        if moved and self.on_message is not None:
            self.on_message()
        if call == "ConfirmMessageReceived" and self.on_stored is not None:
            self.on_stored()
        return response

    def _note_message(self, response: Any) -> bool:
        """Whether the SuperLink answered a poll with a message (then its round is noted)."""
        from flwr.proto.fleet_pb2 import PullMessagesResponse  # pylint: disable=E0611

        if not response.is_success:
            return False
        pulled = PullMessagesResponse()
        pulled.ParseFromString(response.content)
        if not pulled.messages_list:
            return False
        metadata = pulled.messages_list[0].metadata
        self.tally.message(int(metadata.run_id), str(metadata.group_id))
        return True


def count_fleet_traffic(
    site: Path, on_message: Callable[[], None] | None = None, on_stored: Callable[[], None] | None = None
) -> Tally:
    """Count every byte of the SuperNode's Fleet client (made by whatever ``from_server_address`` is now);
    ``on_message``: a message came or went; ``on_stored``: the SuperNode holds a message whole."""
    from flwr.supercore.exit import add_exit_handler
    from flwr.supernode.fleet_http_client import FleetHttpClient

    tally = Tally(traffic_file(site))
    tally.keep_written()
    add_exit_handler(tally.leaving, run_before_force_exit=True)
    make = FleetHttpClient.from_server_address  # bound: the site's certificate-presenting one, or Flower's

    def counted(
        cls: Any,
        server_address: str,
        insecure: bool,
        root_certificates: Any,
        interceptors: Any,
        **kwargs: Any,
    ) -> Any:
        interceptors = [*interceptors, RoundInterceptor(tally, on_message, on_stored)]
        client = make(server_address, insecure, root_certificates, interceptors, **kwargs)
        count_connections(client, tally)
        return client

    FleetHttpClient.from_server_address = classmethod(counted)  # type: ignore[method-assign,assignment]
    return tally


def count_connections(client: Any, tally: Tally) -> None:
    """New connections of a Flower protobuf client's httpx pool go through :class:`CountingBackend`."""
    try:
        pool = client._client._transport._pool
        inner = pool._network_backend
    except AttributeError as exc:
        raise RuntimeError(
            "this Flower or httpx release builds its Fleet client differently, so Genba cannot count the "
            "site's traffic; install the versions Genba pins"
        ) from exc
    pool._network_backend = CountingBackend(inner, tally)


class CountingBackend:
    """An httpcore network backend whose connections count their bytes, TLS included."""

    def __init__(self, inner: Any, tally: Tally) -> None:
        self.inner = inner
        self.tally = tally

    def connect_tcp(self, host: str, port: int, **options: Any) -> CountedPlain:
        """``options``: httpcore's timeout, local address and socket options, passed on as they came."""
        return CountedPlain(self.inner.connect_tcp(host, port, **options), self.tally)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise RuntimeError("the site's SuperNode dials its SuperLink over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class CountedPlain:
    """A TCP connection before TLS: counts what passes, and does its TLS through :class:`CountedTLS`."""

    def __init__(self, stream: Any, tally: Tally) -> None:
        self.stream = stream
        self.tally = tally

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self.stream.read(max_bytes, timeout)
        self.tally.received(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, timeout)
        self.tally.sent(len(buffer))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> CountedTLS:  # fmt: skip
        return CountedTLS(
            self.stream.get_extra_info("socket"), ssl_context, server_hostname, timeout, self.tally
        )

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class CountedTLS:
    """TLS over a socket through memory BIOs, so every byte on the socket is seen and counted."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None,
                 timeout: float | None, tally: Tally) -> None:  # fmt: skip
        import httpcore

        self.sock = sock
        self.tally = tally
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        with _mapped(httpcore.ConnectError, httpcore.ConnectTimeout, close=sock):
            sock.settimeout(timeout)
            self._exchange(self.tls.do_handshake)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        with _mapped(httpcore.ReadError, httpcore.ReadTimeout):
            self.sock.settimeout(timeout)
            try:
                return bytes(self._exchange(partial(self.tls.read, max_bytes)))
            except ssl.SSLZeroReturnError:  # the server closed the TLS session cleanly
                return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        with _mapped(httpcore.WriteError, httpcore.WriteTimeout):
            self.sock.settimeout(timeout)
            view = memoryview(buffer)
            while view:
                view = view[self._exchange(partial(self.tls.write, view)) :]

    def close(self) -> None:
        self.sock.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("TLS inside TLS is not something the site's SuperNode does")

    def get_extra_info(self, info: str) -> Any:
        extra = {"ssl_object": lambda: self.tls, "socket": lambda: self.sock, "is_readable": self._readable,
                 "client_addr": self.sock.getsockname, "server_addr": self.sock.getpeername}  # fmt: skip
        return extra[info]() if info in extra else None

    def _exchange(self, operation: Callable[[], Any]) -> Any:
        """Run one TLS operation, moving records between the socket and the BIOs until it completes."""
        while True:
            try:
                result = operation()
                wants_input = False
            except ssl.SSLWantReadError:
                wants_input = True
            pending = self._outgoing.read()
            if pending:
                self._send(pending)
            if not wants_input:
                return result
            data = self.sock.recv(_READ_SIZE)
            self.tally.received(len(data))
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    def _send(self, data: bytes) -> None:
        """Send ``data``, counting each part the socket took as it goes: a send that fails halfway
        (the connection reset under it) still counts what left, as anyone on the path saw it."""
        view = memoryview(data)
        while view:
            taken = self.sock.send(view)
            self.tally.sent(taken)
            view = view[taken:]

    def _readable(self) -> bool:
        """Whether the idle connection has something to read (the server closed it): httpcore drops it."""
        if self.sock.fileno() < 0:
            return True
        return bool(select.select([self.sock], [], [], 0)[0])


@contextmanager
def _mapped(
    error: type[Exception], timeout: type[Exception], close: socket.socket | None = None
) -> Iterator[None]:
    """Socket and TLS failures as the httpcore errors httpx expects from a network stream."""
    try:
        yield
    except TimeoutError as exc:
        if close is not None:
            close.close()
        raise timeout(str(exc)) from exc
    except ssl.SSLEOFError as exc:
        # The line dropped mid-exchange (no TLS alert came, the TCP connection just ended). Said in
        # words Flower retries: it gives up on any error naming SSL or TLS, as if a certificate
        # were wrong, and would lose the reply it was sending.
        if close is not None:
            close.close()
        raise error(DROPPED) from exc
    except OSError as exc:  # ssl.SSLError included
        if close is not None:
            close.close()
        raise error(str(exc)) from exc
