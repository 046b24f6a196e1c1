"""A loopback TCP proxy that counts the bytes each way: what a SuperNode really sends to the SuperLink."""

from __future__ import annotations

import socket
import threading
import time


class Counts:
    """Bytes each way and connections (a plain class: this module is loaded by path)."""

    def __init__(self) -> None:
        self.upstream = 0  # SuperNode -> SuperLink
        self.downstream = 0
        self.connections = 0
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
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ByteCountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self.counts.connections += 1
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
