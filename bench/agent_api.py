"""Benchmark: the agent's local API against a bare ONNX Runtime session on the same bundle and inputs.

* ``p50_overhead_vs_ort_b1``: API p50 latency, one client sending one text at a
  time, over the p50 of the bare session answering the same texts one by one
  (both include tokenizing; the API adds HTTP, JSON, batching and the store commit).
* ``throughput_vs_ort_b32``: API throughput with 16 concurrent clients sending
  single texts (micro-batching groups them) over the bare session's throughput
  on batches of 32 of the same texts.
* ``rss_mb``: the serving agent's resident memory after the runs.
* ``cold_start_s``: from starting ``genba agent serve`` to its first answer.

Rounds alternate API and bare-session measurements; medians are reported. The
load generator speaks HTTP/1.1 keep-alive over raw asyncio streams so that the
client costs as little CPU as possible on a machine it shares with the agent.

    .venv/bin/python bench/agent_api.py [--bundle DIR] [--out bench-out/agent] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchtexts import long_texts

from genba import env

THREADS = 2
CLIENTS = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, help="a signed bundle (default: export the default one)")
    parser.add_argument("--trust", type=Path, help="public key that signed --bundle")
    parser.add_argument("--out", type=Path, default=Path("bench-out/agent"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each throughput run")
    parser.add_argument("--intra-op-threads", type=int, default=THREADS, help="ONNX Runtime threads per run")
    parser.add_argument(
        "--spin-wait",
        choices=("on", "off"),
        default="on",
        help="ONNX Runtime thread spinning, for the agent and the bare session alike",
    )
    args = parser.parse_args()
    bundle, trust = _bundle(args)
    texts = _texts()
    site = _site(args.out / "site", trust, args.spin_wait == "on", args.intra_op_threads)
    _install(site, bundle)
    agent, cold_start_s = _start_agent(site, args.out / "agent.log", texts[0])
    try:
        results = _measure(agent, site, bundle, texts, args.rounds, args.seconds)
        results["rss_mb"], results["rss_peak_mb"] = _rss_mb(agent.pid)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    results["cold_start_s"] = round(cold_start_s, 2)
    document = {
        "p50_overhead_vs_ort_b1": results.pop("p50_overhead_vs_ort_b1"),
        "throughput_vs_ort_b32": results.pop("throughput_vs_ort_b32"),
        "rss_mb": results.pop("rss_mb"),
        "cold_start_s": results.pop("cold_start_s"),
        "targets": {"p50_overhead_vs_ort_b1": "<= 1.3", "throughput_vs_ort_b32": ">= 0.8"},
        "details": {
            **results,
            "threads": args.intra_op_threads,
            "spin_wait": args.spin_wait == "on",
            "clients": CLIENTS,
            "texts": len(texts),
            "rounds": args.rounds,
            "bundle": str(bundle),
            "precision": _precision(bundle),
        },
    }
    print(json.dumps(document, indent=2))
    return 0


# ------------------------------------------------------------------ set-up


def _bundle(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.bundle is not None:
        if args.trust is None:
            sys.exit("--bundle needs --trust PUBKEY (the key that signed it)")
        return args.bundle, args.trust
    from export.default_model import export_default_bundle, train_default_head, write_default_data
    from genba import keys
    from genba.bundle import verify_directory
    from genba.errors import GenbaError

    out = args.out
    bundle, key = out / "bundle", out / "keys" / "it-sign.pem"
    pub = key.with_name(key.name + ".pub")
    try:
        verify_directory(bundle, [keys.load_public_key(pub)])
        return bundle, pub  # exported by an earlier run of this benchmark
    except GenbaError:
        shutil.rmtree(out, ignore_errors=True)
    keys.write_key_pair(keys.generate_signing_key(), key)
    print("… exporting the default bundle (once)", file=sys.stderr)
    export_default_bundle(
        bundle, write_default_data(out / "data"), train_default_head(), signing_key=key, threads=THREADS
    )
    return bundle, pub


def _texts() -> list[str]:
    from export.datasets import site_split

    return [report.text for report in site_split("site-a", seed=0).eval][:512]


def _site(root: Path, trust: Path, spin_wait: bool, intra_op_threads: int) -> Any:
    import tomli_w

    from edge_agent.site_init import init_site

    shutil.rmtree(root, ignore_errors=True)
    site = init_site(root, site_name="bench", trust=[trust])
    document = {
        "site": {"name": "bench"},
        "runtime": {"provider": "cpu", "intra_op_threads": intra_op_threads, "spin_wait": spin_wait},
        "batching": {"max_batch_size": 32, "max_wait_ms": 2.0},
    }
    site.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    return site


def _install(site: Any, bundle: Path) -> None:
    command = [sys.executable, "-m", "genba", "agent", "install", "--data", str(site.root), str(bundle)]
    subprocess.run(command, check=True, env=env.child_environment(), stdout=subprocess.DEVNULL)


def _start_agent(site: Any, log: Path, first_text: str) -> tuple[subprocess.Popen[bytes], float]:
    command = [sys.executable, "-m", "genba", "agent", "serve", "--data", str(site.root)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env.child_environment()
    )
    while not site.address_file.exists():
        if process.poll() is not None:
            sys.exit(f"the agent did not start; see {log}")
        time.sleep(0.005)
    client = _client(site)
    _run(client.once(first_text))
    return process, time.perf_counter() - started


def _client(site: Any) -> RawClient:
    url = json.loads(site.address_file.read_text())["url"]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return RawClient(host, int(port), site.read_token("integration"))


def _precision(bundle: Path) -> Any:
    from genba.bundle import read_manifest

    precision = read_manifest(bundle)[0].precision
    return precision.variant if precision else None


# ------------------------------------------------------------------ measuring


def _measure(
    agent: Any, site: Any, bundle: Path, texts: list[str], rounds: int, seconds: float
) -> dict[str, Any]:
    from edge_agent.config import load_agent_config
    from edge_agent.library import ModelLibrary

    runtime = load_agent_config(site.config_file).runtime  # the very session options the agent uses
    bare = ModelLibrary(site.models_dir, site.trusted_keys(), runtime).load(0, bundle.resolve()).model
    client = _client(site)
    long = long_texts(texts, 32)
    api_b1, ort_b1, api_tput, ort_tput, api_long, ort_long = [], [], [], [], [], []
    for _ in range(rounds):
        api_b1.append(statistics.median(_run(client.sequential(texts[:128]))))
        ort_b1.append(statistics.median(_bare_b1(bare, texts[:128])))
        api_long.append(statistics.median(_run(client.sequential(long))))
        ort_long.append(statistics.median(_bare_b1(bare, long)))
        api_tput.append(_run(client.concurrent(texts, CLIENTS, seconds)))
        ort_tput.append(_bare_b32(bare, texts, seconds))
    api_p50, ort_p50 = statistics.median(api_b1), statistics.median(ort_b1)
    api_ips, ort_ips = statistics.median(api_tput), statistics.median(ort_tput)
    api_long_p50, ort_long_p50 = statistics.median(api_long), statistics.median(ort_long)
    return {
        "p50_overhead_vs_ort_b1": round(api_p50 / ort_p50, 3),
        "throughput_vs_ort_b32": round(api_ips / ort_ips, 3),
        "api_p50_ms_b1": round(api_p50, 3),
        "overhead_ms_b1": round(api_p50 - ort_p50, 3),
        "ort_p50_ms_b1": round(ort_p50, 3),
        "p50_overhead_vs_ort_b1_128_tokens": round(api_long_p50 / ort_long_p50, 3),
        "api_p50_ms_b1_128_tokens": round(api_long_p50, 3),
        "ort_p50_ms_b1_128_tokens": round(ort_long_p50, 3),
        "api_items_per_s_16_clients": round(api_ips, 1),
        "ort_items_per_s_b32": round(ort_ips, 1),
    }


def _bare_b1(model: Any, texts: list[str]) -> list[float]:
    timings = []
    for text in texts:
        start = time.perf_counter()
        model.predict_arrays([text])
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def _bare_b32(model: Any, texts: list[str], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        offset = (done // 32 * 32) % len(texts)
        model.predict_arrays((texts * 2)[offset : offset + 32])
        done += 32
    return done / (time.perf_counter() - start)


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return (
        round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        round(int(fields["VmHWM"].split()[0]) / 1024, 1),
    )


def _run(coroutine: Any) -> Any:
    """uvloop when present (it is, with uvicorn's extras): the cheapest client loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


class RawClient:
    """HTTP/1.1 keep-alive POSTs over asyncio streams: a load generator that stays out of the way."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    async def _post(self, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], text: str) -> None:
        body = json.dumps({"text": text}).encode()
        await exchange(streams, self.host, self.token, "POST", "/v1/predict", body)

    async def once(self, text: str) -> None:
        streams = await self._connect()
        await self._post(streams, text)
        streams[1].close()

    async def sequential(self, texts: list[str]) -> list[float]:
        streams = await self._connect()
        timings = []
        for text in texts:
            start = time.perf_counter()
            await self._post(streams, text)
            timings.append((time.perf_counter() - start) * 1000.0)
        streams[1].close()
        return timings

    async def concurrent(self, texts: list[str], clients: int, seconds: float) -> float:
        deadline = time.perf_counter() + seconds
        counts = [0] * clients

        async def worker(index: int) -> None:
            streams = await self._connect()
            position = index
            while time.perf_counter() < deadline:
                await self._post(streams, texts[position % len(texts)])
                position += clients
                counts[index] += 1
            streams[1].close()

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return sum(counts) / (time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())


async def exchange(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], host: str, token: str, method: str, path: str,
    body: bytes,
) -> bytes:  # fmt: skip
    """One HTTP/1.1 request on a kept-alive connection, written by hand (no client library's own cost
    in the figures); the answer's body, or RuntimeError for anything but 200."""
    reader, writer = streams
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    payload = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{method} {path}: agent answered {head.splitlines()[0]!r}: {payload[:200]!r}")
    return payload
