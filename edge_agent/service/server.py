"""Run the agent with its local API under uvicorn, on loopback, and publish its address."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from edge_agent.config import AgentConfig
from edge_agent.site import SiteFolder, exclusive_agent

log = logging.getLogger(__name__)


def serve(site: SiteFolder, config: AgentConfig, announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. ``agent.addr`` appears only once the socket accepts requests."""
    from edge_agent.agent import Agent
    from edge_agent.service.app import asgi_app
    from edge_agent.service.auth import TokenRegistry

    site.require_initialized()
    with exclusive_agent(site):
        sock = _loopback_socket(config.api.host, config.api.port)
        agent = Agent.open(site, config)
        try:
            host, port = sock.getsockname()[:2]
            url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
            app = asgi_app(agent, TokenRegistry.from_site(site), config.api)

            def ready() -> None:
                site.write_address(url, os.getpid())
                (announce or _announce)(_summary(agent, url))

            server = _Server(
                uvicorn.Config(
                    app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
                ),
                ready,
            )
            server.run(sockets=[sock])
        finally:
            site.clear_address(os.getpid())
            agent.close()
            sock.close()


class _Server(uvicorn.Server):
    """uvicorn's Server with a hook once it listens (the address file must never point at nothing)."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._ready = ready

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop gracefully on SIGINT/SIGTERM and return, so the agent closes its store and address file.

        (uvicorn's own version re-raises the signal after shutting down, which
        would end the process before that clean-up runs.)
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._ready()


def _loopback_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("localhost" if host == "localhost" else host, port))
    except OSError as exc:
        sock.close()
        from genba.errors import UsageError

        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another [api] port"
        ) from exc
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


def _summary(agent: Any, url: str) -> str:
    production = agent.active.production
    model = (
        f"{production.identity.label} on {production.model.provider}"
        if production
        else "no production model yet (install one with 'genba agent install')"
    )
    return f"genba agent: site {agent.config.site} serving {model} at {url}"


def _announce(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
