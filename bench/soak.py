"""A soak of a real site agent: several clients for a long while, one kill -9 on the way, nothing lost.

A real agent (``genba agent serve``, the real API on loopback, durability as the site's settings say)
serves a bundle while, at once:

* ``clients`` integration clients send one report at a time, back to back, each tagged with a line;
* an operator labels the first item of the labelling queue every ``label_every_s`` seconds;
* the operator's app reads every view once a second (the read endpoints of
  ``bench/serving_under_polling.py``).

At ``kill_at`` of the way the agent is killed with SIGKILL and started again; the clients reconnect
and go on. At the end it is killed again. Then the store is opened and checked: every prediction and
label the agent acknowledged (a 200 with its id) must be in it, the file whole, its hash chains
intact. The agent's resident memory is sampled every few seconds from ten seconds after the
restart. Its growth (``rss_growth_pct``) is the median of the last tenth of the samples taken after
the warm-up (``warm_up_s`` of full load after the restart, two minutes by default) over the median of
their first tenth. A restarted agent's first minutes are not growth: the shared libraries' pages are
read in as each code path first runs (about 40 MB of mapped files for the serving agent), ONNX
Runtime's arena and the ranking vectors reach their working size. The growth from ten seconds after
the restart is printed beside it (``details.rss_growth_pct_from_restart``), and the growth of the
anonymous memory alone (``details.anon_growth_pct``: what a leak would grow).

Used by ``bench/reliability.py`` (``make reliability``); alone::

    .venv/bin/python bench/soak.py --minutes 30 --bundle DIR --trust KEY.pub
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_site import address, serving_site, start_agent

#: What the operator's app reads, once a second.
VIEWS = (
    "/v1/status",
    "/v1/gates",
    "/v1/queue?limit=50",
    "/v1/kpis",
    "/v1/drift",
    "/v1/groups",
    "/v1/models",
    "/v1/audit?limit=100",
    "/v1/egress?limit=100",
)
LINES = ("L1", "L2", "L3")
#: The first memory sample, in seconds after the restart (the agent is up and loaded by then),
#: or at the end of a shorter warm-up.
FIRST_SAMPLE_S = 10.0


@dataclass
class Tally:
    """What the clients saw: acknowledged ids, and answers that were not a 200."""

    predictions: set[int] = field(default_factory=set)
    labels: set[int] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # a 4xx/5xx while the agent was up
    interrupted: int = 0  # a request cut by the planned kill: never acknowledged, never counted
    views: int = 0
    labels_seen: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SoakConfig:
    seconds: float
    clients: int = 4
    kill_at: float = 0.1  # of the way
    label_every_s: float = 0.5
    warm_up_s: float = 120.0  # of full load after the restart before the growth's baseline
    rss_every_s: float = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--trust", type=Path, required=True, help="the public key the bundle is signed with")
    parser.add_argument("--out", type=Path, default=Path("bench-out/soak"))
    args = parser.parse_args()
    config = SoakConfig(seconds=args.minutes * 60.0, clients=args.clients)
    print(json.dumps(soak(config, args.bundle, args.trust, args.out), indent=2))
    return 0


def soak(config: SoakConfig, bundle: Path, trust: Path, out: Path) -> dict[str, Any]:
    """Run the soak; its figures (``soak_requests``, ``soak_lost``, ``rss_growth_pct``...)."""
    site = serving_site(out / "site", bundle, trust, "soak")
    texts = _texts(5000)
    agent = AgentRun(site, out / "agent.log")
    tally = Tally()
    memory = MemorySamples()
    started = time.monotonic()
    try:
        agent.start()
        durability = _durability(site)
        asyncio.run(_load(agent, config, texts, tally, memory))
    finally:
        agent.kill()
    seconds = time.monotonic() - started
    lost, store = _check_store(site.store_file, tally)
    return {
        "soak_seconds": round(seconds, 1),
        "soak_requests": len(tally.predictions) + len(tally.labels),
        "soak_lost": lost,
        "soak_refused": len(tally.refused),
        "rss_growth_pct": _growth(memory.rss(after_s=config.warm_up_s)),
        "details": {
            "predictions_acknowledged": len(tally.predictions),
            "labels_acknowledged": len(tally.labels),
            "views_read": tally.views,
            "interrupted_by_the_kill": tally.interrupted,
            "refused_examples": tally.refused[:5],
            "agent_kills": agent.kills,
            "warm_up_s": config.warm_up_s,
            "rss_mb_by_tenth": _by_tenth(memory.rss(after_s=config.warm_up_s)),
            "rss_samples": len(memory.rss(after_s=config.warm_up_s)),
            "anon_growth_pct": _growth(memory.anon(after_s=config.warm_up_s)),
            "anon_mb_by_tenth": _by_tenth(memory.anon(after_s=config.warm_up_s)),
            "rss_growth_pct_from_restart": _growth(memory.rss(after_s=0.0)),
            "rss_mb_by_tenth_from_restart": _by_tenth(memory.rss(after_s=0.0)),
            "clients": config.clients,
            "durability": durability,
            "store": store,
        },
    }


class AgentRun:
    """``genba agent serve`` for the soak: started, killed with SIGKILL, started again."""

    def __init__(self, site: Any, log: Path) -> None:
        self.site = site
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        self.process = start_agent(self.site, self.log)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.kills += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def address(self) -> tuple[str, int]:
        return address(self.site)


# ------------------------------------------------------------------ the load


async def _load(
    agent: AgentRun, config: SoakConfig, texts: list[str], tally: Tally, memory: MemorySamples
) -> None:
    up = asyncio.Event()
    up.set()
    deadline = time.monotonic() + config.seconds
    kill_at = time.monotonic() + config.seconds * config.kill_at
    first_sample_s = min(FIRST_SAMPLE_S, config.warm_up_s)
    workers = [
        *(_predicting(agent, up, deadline, texts[i :: config.clients], tally) for i in range(config.clients)),
        _labelling(agent, up, deadline, config.label_every_s, tally),
        _reading_views(agent, up, deadline, tally),
        _killing_once(agent, up, kill_at),
        _sampling_memory(agent, up, deadline, kill_at, first_sample_s, config.rss_every_s, memory),
    ]
    await asyncio.gather(*workers)


async def _predicting(
    agent: AgentRun, up: asyncio.Event, deadline: float, texts: list[str], tally: Tally
) -> None:
    rng = random.Random(len(texts))
    position = 0
    async with Session(agent, up, "integration", tally) as session:
        while time.monotonic() < deadline:
            body = {"text": texts[position % len(texts)], "groups": {"line": rng.choice(LINES)}}
            position += 1
            answer = await session.call("POST", "/v1/predict", body)
            if answer is not None:
                tally.predictions.add(int(answer["prediction_id"]))
                tally.labels_seen.add(str(answer["label"]))


async def _labelling(
    agent: AgentRun, up: asyncio.Event, deadline: float, every_s: float, tally: Tally
) -> None:
    rng = random.Random(7)
    async with Session(agent, up, "operator", tally) as session:
        while time.monotonic() < deadline:
            await asyncio.sleep(every_s)
            queue = await session.call("GET", "/v1/queue?limit=5", None)
            if not queue or not queue["items"] or not tally.labels_seen:
                continue
            item = queue["items"][0]
            label = (
                item["label"]
                if rng.random() < 0.8 and item["label"]
                else rng.choice(sorted(tally.labels_seen))
            )
            answer = await session.call("POST", "/v1/labels", {"input_id": item["input_id"], "label": label})
            if answer is not None:
                tally.labels.add(int(answer["label_id"]))


async def _reading_views(agent: AgentRun, up: asyncio.Event, deadline: float, tally: Tally) -> None:
    async with Session(agent, up, "supervisor", tally) as session:
        while time.monotonic() < deadline:
            started = time.monotonic()
            for path in VIEWS:
                if await session.call("GET", path, None) is not None:
                    tally.views += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def _killing_once(agent: AgentRun, up: asyncio.Event, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    up.clear()
    agent.kill()
    await asyncio.to_thread(agent.start)
    up.set()


@dataclass
class MemorySamples:
    """The restarted agent's memory: (seconds since the restart, VmRSS MB, RssAnon MB) samples."""

    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def rss(self, after_s: float) -> list[float]:
        return [rss for at, rss, _ in self.samples if at >= after_s]

    def anon(self, after_s: float) -> list[float]:
        return [anon for at, _, anon in self.samples if at >= after_s]


async def _sampling_memory(
    agent: AgentRun,
    up: asyncio.Event,
    deadline: float,
    restart: float,
    first_s: float,
    every_s: float,
    memory: MemorySamples,
) -> None:
    await asyncio.sleep(max(0.0, restart + first_s - time.monotonic()))
    while time.monotonic() < deadline:
        await up.wait()
        with contextlib.suppress(OSError, KeyError):
            rss, anon = _memory_mb(agent.pid)
            memory.samples.append((time.monotonic() - restart, rss, anon))
        await asyncio.sleep(every_s)


class Session:
    """One client's kept-alive connection; reconnects after the planned kill, counts what it was told."""

    def __init__(self, agent: AgentRun, up: asyncio.Event, role: str, tally: Tally) -> None:
        self.agent, self.up, self.tally = agent, up, tally
        self.token = agent.site.read_token(role)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.host = ""

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close()

    async def call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """The answer's JSON on a 200; None when refused (counted) or cut by the kill (not counted)."""
        from agent_api import exchange

        payload = b"" if body is None else json.dumps(body).encode()
        try:
            if self.streams is None:
                await self.up.wait()
                self.host, port = self.agent.address()
                self.streams = await asyncio.open_connection(self.host, port)
            return json.loads(await exchange(self.streams, self.host, self.token, method, path, payload))
        except RuntimeError as refused:  # the agent answered, not with a 200
            self.tally.refused.append(str(refused)[:300])
            return None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self._close()  # the agent went away under this request: it was never acknowledged
            self.tally.interrupted += 1
            await self.up.wait()
            await asyncio.sleep(0.05)
            return None

    def _close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


# ------------------------------------------------------------------ set-up and checks


def _durability(site: Any) -> str:
    """What the agent says an acknowledged write survives (its status)."""
    from edge_agent.service.client import AgentClient

    with AgentClient.for_site(site.root, "supervisor") as client:
        return client.status().store.durability


def _texts(count: int) -> list[str]:
    from export.datasets import shopfloor

    reports = shopfloor.site_split("site-a", seed=11, n_pool=count, n_eval=0).train
    return [f"{report.text} #{i}" for i, report in enumerate(reports)]


def _check_store(path: Path, tally: Tally) -> tuple[int, dict[str, Any]]:
    """Acknowledged ids missing from the store after the last kill, and the store's own checks."""
    from edge_agent.store import SiteStore

    with SiteStore(path) as store:  # as the agent opens it after a crash
        integrity = store.integrity_check()
        chains = {name: report.ok for name, report in store.verify_chains(full=True).items()}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        predictions = {row[0] for row in db.execute("SELECT id FROM predictions")}
        labels = {row[0] for row in db.execute("SELECT id FROM labels")}
    lost = len(tally.predictions - predictions) + len(tally.labels - labels)
    return lost, {"integrity": integrity, "chains_intact": chains, "predictions": len(predictions)}


def _memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory and the anonymous part of it (not mapped files), in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rss, anon = (round(int(fields[name].split()[0]) / 1024, 1) for name in ("VmRSS", "RssAnon"))
    return rss, anon


def _by_tenth(samples: list[float]) -> list[float]:
    """The median of each tenth of the samples: whether memory levels off or keeps growing."""
    tenth = len(samples) // 10
    return [statistics.median(samples[i * tenth : (i + 1) * tenth]) for i in range(10)] if tenth else []


def _growth(samples: list[float]) -> float | None:
    """Median of the last tenth of samples over the median of the first tenth, in percent."""
    if len(samples) < 10:
        return None
    tenth = max(1, len(samples) // 10)
    first, last = statistics.median(samples[:tenth]), statistics.median(samples[-tenth:])
    return round((last - first) / first * 100.0, 2)


if __name__ == "__main__":
    sys.exit(main())
