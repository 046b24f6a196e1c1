"""A loopback TCP proxy that counts the bytes each way: what a SuperNode really sends to the SuperLink.

It can also cut the line (:meth:`ByteCountingProxy.cut`): every open connection is reset and new
ones are refused until :meth:`ByteCountingProxy.restore`, as when a site's network goes down.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class Counts:
    """Bytes each way and connections (a plain class: this module is loaded by path)."""

    def __init__(self) -> None:
        self.upstream = 0  # SuperNode -> SuperLink
        self.downstream = 0
        self.connections = 0
        self.refused = 0  # connections refused while the line was cut
        self.started = time.monotonic()


class ByteCountingProxy:
    """Listens on 127.0.0.1:port and forwards every connection to 127.0.0.1:target."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.counts = Counts()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = threading.Event()
        self._cut = threading.Event()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ByteCountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.close()

    def cut(self) -> None:
        """The line goes down: open connections are reset, new ones refused."""
        self._cut.set()
        with self._lock:
            live, self._open = self._open, set()
        for end in live:
            _reset(end)

    def restore(self) -> None:
        """The line is back: new connections are forwarded again."""
        self._cut.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._cut.is_set():
                with self._lock:
                    self.counts.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # nothing listens there (the SuperLink is down): as the network would say
                _reset(client)
                continue
            with self._lock:
                self.counts.connections += 1
                self._open |= {client, upstream}
            for source, sink, direction in ((client, upstream, "upstream"), (upstream, client, "downstream")):
                threading.Thread(target=self._pump, args=(source, sink, direction), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    setattr(self.counts, direction, getattr(self.counts, direction) + len(chunk))
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._open -= {source, sink}


def _reset(end: socket.socket) -> None:
    """Close with a TCP reset, as a dropped line looks to the peer."""
    try:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        end.shutdown(socket.SHUT_RD)  # wakes the thread reading it; sends nothing
    except OSError:
        pass
    try:
        end.close()
    except OSError:
        pass
