"""The site's ClientApp survives its SuperNode closing a kept-alive connection while the site trains.

The SuperNode's Runtime API (uvicorn) closes a connection idle for 5 s; a fit that takes longer
came back to a pooled connection the server had dropped, and the reply was lost (the round went
on without the site). A real server here answers a connection's first request and resets it on
the second, as a server that closed it in between does.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest

from edge_agent.federation.pinned_clientapp import _transport_retry

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


def _serve(listener: socket.socket, served: list[int]) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            served.append(1)  # counted before the answer leaves: a client that has it sees the count
            connection.sendall(RESPONSE)
            connection.recv(65536)  # the next request on the same connection: reset, unanswered
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[int] = []
    thread = threading.Thread(target=_serve, args=(listener, served), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", served
    listener.close()


def test_a_reset_kept_alive_connection_fails_a_call_without_the_retry(
    dropping_server: tuple[str, list[int]],
) -> None:
    url, _ = dropping_server
    with httpx.Client() as client:
        assert client.get(url).text == "ok"
        with pytest.raises(httpx.TransportError):
            client.get(url)


def test_the_clientapps_calls_are_tried_again_on_a_new_connection(
    dropping_server: tuple[str, list[int]],
) -> None:
    url, served = dropping_server
    retry = _transport_retry()
    with httpx.Client() as client:
        assert retry.invoke(client.get, url).text == "ok"
        assert retry.invoke(client.get, url).text == "ok"  # the pooled connection was reset
    assert len(served) == 2


def test_a_call_that_keeps_failing_gives_up_with_the_transport_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        _transport_retry().invoke(client.get, f"http://127.0.0.1:{port}/")
