"""Benchmark: a two-variant bundle served on a GPU, against torch eager on the same GPU and inputs.

Runs where Genba's runtime and torch run; the GPU part needs onnxruntime-gpu and a CUDA device
(``bench/device_unpack.sh`` brings onnxruntime-gpu to the device machine), the CPU part runs
anywhere (``--provider cpu``). One JSON document:

* ``placement``: each variant loaded on the active provider, nodes on the CPU measured from a
  profiled run and predicted from CUDA's kernel registry; ``cuda_nodes_on_cpu`` and
  ``cuda_compute_ops_on_cpu`` of the variant the runtime serves (target: 0 compute ops).
* ``policy``: the served variant under ``auto`` and ``gpu``; an int8-only bundle under ``gpu``
  (must be refused, naming the operators) and ``auto`` (must fall back to the CPU).
* ``timings_ms``: end to end, tokenization included, medians of interleaved rounds: Genba's
  runtime (the served variant, IO binding) vs torch eager fp32 and fp16 (SDPA) fed by the same
  tokenizer, at b1 (short report), b1 (128 tokens), b32 and b256; ``fp16_vs_torch_fp32_b32`` and
  ``fp16_vs_torch_fp32_b256`` are torch's time over Genba's.
* ``tokenization_ms``: the b256 batch tokenized on 1, 2, 4 and 8 threads.
* ``api``: the agent's local API p50 at b1 over the bare runtime's (same texts, same provider).
* ``kernel_table``: with CUDA, the CUDA provider's kernel registry, written for
  ``genba/runtime/cuda_kernels.json`` (``--kernels-out``).

    python bench/gpu_serving.py --bundle DIR --trust PUB [--torch-model DIR] [--provider gpu|cpu]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchtexts import long_texts

from genba import env

CUDA = "CUDAExecutionProvider"
SIZES = ("b1_short", "b1_128", "b32", "b256")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--bundle", type=Path, help="a signed two-variant bundle (default: export the default one)"
    )
    parser.add_argument("--trust", type=Path, help="public key that signed --bundle")
    parser.add_argument("--torch-model", type=Path, help="the bundle's source model folder (torch baseline)")
    parser.add_argument("--head-npz", type=Path, help="the bundle head's weight and bias (torch baseline)")
    parser.add_argument("--provider", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--out", type=Path, default=Path("bench-out/gpu"))
    parser.add_argument("--kernels-out", type=Path, help="write CUDA's kernel registry here (GPU only)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20, help="timed calls per path and round")
    parser.add_argument("--tokenizer-threads", type=int, default=4)
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.bundle is None:  # here, not on the device: export the default bundle once, as make bench does
        args.bundle, args.trust, args.torch_model, args.head_npz = _default_bundle(args.out)
    elif args.trust is None:
        raise SystemExit("--bundle needs --trust PUBKEY (the key that signed it)")
    document: dict[str, Any] = {"provider_policy": args.provider, "device": _device()}
    section = _sections(document, args.out / "partial.json")
    if args.provider == "gpu" and args.kernels_out is not None:
        section("kernel_table", lambda: dump_kernel_table(args.kernels_out, args.bundle / "head.onnx"))
    texts = _texts()
    section("placement", lambda: placement(args.bundle, args.provider))
    section("policy", lambda: policy(args.bundle, args.provider, args.out))
    section("tokenization_ms", lambda: tokenization(args.bundle, texts))
    section("agreement", lambda: agreement(args, texts))
    timings = section("timings_ms", lambda: timings_ms(args, texts))
    if "error" not in timings:
        document.update(_ratios(timings))
    if not args.skip_api:
        api = section("api", lambda: api_overhead(args, texts, "on"))
        plain = section("api_without_overlap", lambda: api_overhead(args, texts, "off"))
        key = "api_p50_overhead_vs_runtime_b1_" + ("gpu" if args.provider == "gpu" else "cpu")
        document[key] = api.get("p50_overhead_vs_runtime_b1")
        if "error" not in api and "error" not in plain:
            document["api_throughput_16_clients_overlap_on_over_off"] = round(
                api["items_per_s_16_clients"] / plain["items_per_s_16_clients"], 3
            )
    served = document["placement"].get("served") or {}
    document["cuda_nodes_on_cpu"] = served.get("nodes_on_cpu")
    document["cuda_compute_ops_on_cpu"] = served.get("compute_ops_on_cpu")
    document["targets"] = {
        "fp16_vs_torch_fp32_b32": ">= 4.0",
        "fp16_vs_torch_fp32_b256": ">= 3.5",
        "cuda_compute_ops_on_cpu": "0",
    }
    print(json.dumps(document, indent=2))
    return 0


def _sections(document: dict[str, Any], partial: Path) -> Callable[[str, Callable[[], Any]], Any]:
    """Run one part of the benchmark; a part that fails records its error and the rest still run.
    What is measured so far is written to ``partial`` after each part (device time is scarce)."""

    def run(name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            document[name] = work()
        except Exception as exc:
            document[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"… {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
        return document[name]

    return run


# ------------------------------------------------------------------ placement and policy


def dump_kernel_table(path: Path, warm_model: Path) -> dict[str, Any]:
    """CUDA's kernel registry, dumped by ``bench/cuda_kernels.py`` in a process of its own (the
    registry is ORT-internal: if reading it crashes, the benchmark goes on without it)."""
    script = Path(__file__).with_name("cuda_kernels.py")
    command = [sys.executable, "-X", "faulthandler", str(script), str(path), str(warm_model)]
    done = subprocess.run(command, capture_output=True, text=True, env=env.child_environment(), timeout=300)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}", "stderr": done.stderr[-3000:]}
    from genba.runtime.placement import KERNEL_TABLE

    # The shipped table predicts; a dump that differs from it means the table must be renewed.
    return {**json.loads(done.stdout), "same_as_shipped": path.read_bytes() == KERNEL_TABLE.read_bytes()}


def placement(bundle_dir: Path, provider: str) -> dict[str, Any]:
    """Every variant loaded on the policy's provider: measured and predicted placement."""
    from genba.bundle import verify_directory
    from genba.runtime import GraphSet, RuntimeConfig
    from genba.runtime.model import BundleModel
    from genba.runtime.targets import graph_bytes, predicted_placement
    from genba.variants import variants_of

    verified = verify_directory(bundle_dir, None)
    runtime = RuntimeConfig(provider="auto" if provider == "gpu" else "cpu")
    model = BundleModel(verified, runtime)
    probe = model.preprocessor.encode(["scratch on the housing, part 4411"])
    report: dict[str, Any] = {"served": {"variant": model.variant, "provider": model.provider}}
    for name, spec in variants_of(verified.manifest).items():
        graphs = graph_bytes(verified, spec)
        loaded = GraphSet(graphs, runtime, probe=probe)
        predicted = predicted_placement(graphs)
        report[name] = {
            "provider": loaded.provider,
            "measured": loaded.placement.to_json() if loaded.placement else None,
            "predicted": predicted.to_json() if predicted else None,
        }
    served = report[model.variant]["measured"] or {}
    report["served"].update(
        nodes_on_cpu=served.get("nodes_on_cpu"), compute_ops_on_cpu=served.get("compute_ops_on_cpu")
    )
    return report


def policy(bundle_dir: Path, provider: str, out: Path) -> dict[str, Any]:
    """What each policy serves, and what an int8-only bundle (no cuda variant) gets under each."""
    from genba.bundle import verify_directory
    from genba.errors import GenbaError
    from genba.runtime import RuntimeConfig
    from genba.runtime.model import BundleModel

    results: dict[str, Any] = {}
    int8_only = _cpu_only_copy(bundle_dir, out / "int8-only")
    policies = ("auto", "gpu") if provider == "gpu" else ("cpu",)
    for label, path in (("bundle", bundle_dir), ("int8_only", int8_only)):
        for name in policies:
            try:
                model = BundleModel(verify_directory(path, None), RuntimeConfig(provider=name))  # type: ignore[arg-type]
                results[f"{label}_{name}"] = {"served": model.served.to_json(), "provider": model.provider}
            except GenbaError as error:
                results[f"{label}_{name}"] = {"refused": type(error).__name__, "message": str(error)}
    return results


def _cpu_only_copy(bundle_dir: Path, out: Path) -> Path:
    """The bundle as an older, single-variant bundle would be: its cpu graphs only (unsigned)."""
    import dataclasses

    from genba.bundle import BundleWriter, verify_directory

    manifest = verify_directory(bundle_dir, None).manifest
    shutil.rmtree(out, ignore_errors=True)
    kept = dataclasses.replace(manifest, variants=None)
    cuda = (manifest.variants or {}).get("cuda")
    cuda_files = {spec.file for spec in cuda.graphs.values()} if cuda else set()
    cuda_files -= {spec.file for spec in manifest.graphs.values()}
    with BundleWriter(out) as writer:
        for name in manifest.files:
            if name not in cuda_files:
                target = writer.root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(bundle_dir / name, target)
        writer.commit(kept, None)
    return out


# ------------------------------------------------------------------ timings


def tokenization(bundle_dir: Path, texts: list[str]) -> dict[str, float]:
    from genba.bundle import read_manifest
    from genba.runtime.preprocess import TextPreprocessor

    spec = read_manifest(bundle_dir)[0].input.to_json()
    result = {}
    for threads in (1, 2, 4, 8):
        pre = TextPreprocessor(bundle_dir / spec["tokenizer"], spec, threads)
        for size in (32, 256):
            call = functools.partial(pre.encode, texts[:size])
            result[f"b{size}_threads_{threads}"] = round(_median_ms(call, 5, 10), 3)
    for threads in (4, 8):  # tokenizers' own Rust pool, for comparison (a process of its own each)
        result.update(_rayon_ms(bundle_dir, threads))
    return result


_RAYON_PROBE = """
import json, statistics, sys, time
from pathlib import Path
from export.datasets import central_split
from genba.runtime.preprocess import TextPreprocessor
bundle = Path(sys.argv[1])
spec = json.loads((bundle / "manifest.json").read_text())["input"]
pre = TextPreprocessor(bundle / spec["tokenizer"], spec, 1)
texts = [r.text for r in central_split(seed=0, n_eval=1000).eval]
out = {}
for size in (32, 256):
    for _ in range(5):
        pre.encode(texts[:size])
    times = []
    for _ in range(10):
        start = time.perf_counter()
        pre.encode(texts[:size])
        times.append((time.perf_counter() - start) * 1000.0)
    out[f"b{size}_rayon_{sys.argv[2]}"] = round(statistics.median(times), 3)
print(json.dumps(out))
"""


def _rayon_ms(bundle_dir: Path, threads: int) -> dict[str, float]:
    environment = env.child_environment()
    environment.update(TOKENIZERS_PARALLELISM="true", RAYON_NUM_THREADS=str(threads))
    command = [sys.executable, "-c", _RAYON_PROBE, str(bundle_dir), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def agreement(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    """Labels of the served variant and torch fp32 on every text, in batches of 32."""
    import numpy as np

    paths = _paths(args)
    ours = next(run for name, run in paths.items() if name.startswith("genba_") and name.count("_") == 1)
    torch32 = paths.get("torch_fp32")
    if torch32 is None:
        return {}
    same = []
    for start in range(0, len(texts), 32):
        batch = texts[start : start + 32]
        probabilities, _, _ = ours(batch)
        same.extend(np.argmax(probabilities, axis=1) == np.argmax(torch32(batch), axis=1))
    return {"texts": len(same), "label_agreement_with_torch_fp32": round(float(np.mean(same)), 4)}


def timings_ms(args: argparse.Namespace, texts: list[str]) -> dict[str, dict[str, float]]:
    """Interleaved rounds over every path and batch size; medians of per-round medians."""
    inputs = {
        "b1_short": [texts[0]],
        "b1_128": long_texts(texts, 1),
        "b32": texts[:32],
        "b256": texts[:256],
    }
    paths = _paths(args)
    rounds: dict[str, dict[str, list[float]]] = {p: {s: [] for s in SIZES} for p in paths}
    for _ in range(args.rounds):
        for size in SIZES:
            for name, run in paths.items():
                rounds[name][size].append(_median_ms(functools.partial(run, inputs[size]), 3, args.reps))
    return {p: {s: round(statistics.median(v), 3) for s, v in sizes.items()} for p, sizes in rounds.items()}


def _paths(args: argparse.Namespace) -> dict[str, Callable[[list[str]], Any]]:
    from genba.bundle import verify_directory
    from genba.runtime import RuntimeConfig
    from genba.runtime.model import BundleModel

    runtime = RuntimeConfig(
        provider="gpu" if args.provider == "gpu" else "cpu", tokenizer_threads=args.tokenizer_threads
    )
    model = BundleModel(verify_directory(args.bundle, None), runtime)
    serial = BundleModel(
        verify_directory(args.bundle, None), RuntimeConfig(provider=runtime.provider, tokenizer_threads=1)
    )
    prepared: dict[tuple[str, ...], Any] = {}

    def infer_only(items: list[str]) -> Any:
        """The sessions alone on inputs tokenized beforehand: what overlapping would hide."""
        key = tuple(items)
        if key not in prepared:
            prepared[key] = model.preprocessor.encode(items)
        return model.graphs.run_feeds(prepared[key])

    paths: dict[str, Callable[[list[str]], Any]] = {
        f"genba_{model.variant}": model.predict_arrays,
        f"genba_{model.variant}_tokenizer_1_thread": serial.predict_arrays,
        f"genba_{model.variant}_inference_only": infer_only,
    }
    if args.torch_model is not None:
        for dtype in ("fp32", "fp16"):
            paths[f"torch_{dtype}"] = _torch_path(args, model, dtype)
    return paths


def _torch_path(args: argparse.Namespace, model: Any, dtype: str) -> Callable[[list[str]], Any]:
    """Torch eager on the same device, fed by the bundle's own tokenizer with the same threads."""
    import numpy as np
    import torch
    from transformers import AutoModel

    device = "cuda" if args.provider == "gpu" and torch.cuda.is_available() else "cpu"
    encoder = AutoModel.from_pretrained(
        str(args.torch_model), dtype=torch.float32, attn_implementation="sdpa"
    )
    encoder = encoder.to(device).eval()
    if dtype == "fp16":
        encoder = encoder.half()
    head = np.load(args.head_npz or args.torch_model / "head.npz")
    weight = torch.from_numpy(head["weight"]).to(device)
    bias = torch.from_numpy(head["bias"]).to(device)

    def run(items: list[str]) -> np.ndarray:
        feeds = model.preprocessor.encode(items)
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(device) for k, v in feeds.items()}
            hidden = encoder(**tensors).last_hidden_state.float()
            mask = tensors["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return torch.softmax(pooled @ weight.T + bias, dim=-1).cpu().numpy()

    return run


def _median_ms(call: Callable[[], Any], warmup: int, reps: int) -> float:
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


def _ratios(timings: dict[str, dict[str, float]]) -> dict[str, Any]:
    ours = next((v for k, v in timings.items() if k.startswith("genba_") and k.count("_") == 1), None)
    torch32, torch16 = timings.get("torch_fp32"), timings.get("torch_fp16")
    if ours is None or torch32 is None or torch16 is None:
        return {}
    return {
        "fp16_vs_torch_fp32_b32": round(torch32["b32"] / ours["b32"], 2),
        "fp16_vs_torch_fp32_b256": round(torch32["b256"] / ours["b256"], 2),
        "fp16_vs_torch_fp16_b32": round(torch16["b32"] / ours["b32"], 2),
        "fp16_vs_torch_fp16_b256": round(torch16["b256"] / ours["b256"], 2),
        "vs_torch_fp32_by_size": {s: round(torch32[s] / ours[s], 2) for s in SIZES},
    }


# ------------------------------------------------------------------ the agent's API


def api_overhead(args: argparse.Namespace, texts: list[str], overlap: str) -> dict[str, Any]:
    """The agent's API p50 at b1 against the bare runtime on the same texts, rounds alternating, and
    its throughput with 16 concurrent clients; ``overlap``: the batcher tokenizing during inference."""
    import tomli_w
    from agent_api import RawClient, _bare_b1, _run

    from edge_agent.config import load_agent_config
    from edge_agent.library import ModelLibrary
    from edge_agent.site_init import init_site

    root = Path(tempfile.mkdtemp(prefix="genba-gpu-site-"))
    site = init_site(root / "site", site_name="bench", trust=[args.trust])
    document = {
        "site": {"name": "bench"},
        "runtime": {"provider": args.provider, "tokenizer_threads": args.tokenizer_threads},
        "batching": {"max_batch_size": 32, "max_wait_ms": 2.0, "overlap": overlap},
    }
    site.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    command = [sys.executable, "-m", "genba", "agent"]
    subprocess.run(
        [*command, "install", "--data", str(site.root), str(args.bundle)],
        check=True,
        env=env.child_environment(),
        stdout=subprocess.DEVNULL,
    )
    log = (args.out / "agent.log").open("wb")
    agent = subprocess.Popen(
        [*command, "serve", "--data", str(site.root)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env.child_environment(),
    )
    try:
        while not site.address_file.exists():
            if agent.poll() is not None:
                raise SystemExit(f"the agent did not start; see {args.out / 'agent.log'}")
            time.sleep(0.01)
        url = json.loads(site.address_file.read_text())["url"]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = RawClient(host, int(port), site.read_token("integration"))
        runtime = load_agent_config(site.config_file).runtime
        bare = (
            ModelLibrary(site.models_dir, site.trusted_keys(), runtime).load(0, args.bundle.resolve()).model
        )
        _run(client.once(texts[0]))
        api, ort, throughput = [], [], []
        for _ in range(args.rounds):
            api.append(statistics.median(_run(client.sequential(texts[:128]))))
            ort.append(statistics.median(_bare_b1(bare, texts[:128])))
            throughput.append(_run(client.concurrent(texts, 16, 3.0)))
        status = _status(url, site.read_token("operator"))
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    api_p50, ort_p50 = statistics.median(api), statistics.median(ort)
    return {
        "p50_overhead_vs_runtime_b1": round(api_p50 / ort_p50, 3),
        "api_p50_ms_b1": round(api_p50, 3),
        "runtime_p50_ms_b1": round(ort_p50, 3),
        "items_per_s_16_clients": round(statistics.median(throughput), 1),
        "overlap": overlap,
        "served_variant": bare.variant,
        "status_production": status,
    }


def _status(url: str, token: str) -> Any:
    import httpx

    response = httpx.get(f"{url}/v1/status", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    production = response.json().get("production") or {}
    return {k: production.get(k) for k in ("variant", "provider", "placement", "precision")}


# ------------------------------------------------------------------ inputs and device


def _default_bundle(out: Path) -> tuple[Path, Path, Path, Path]:
    """The default MiniLM bundle with both variants, its key, the torch model and head weights."""
    import numpy as np
    from agent_api import _bundle as export_or_reuse

    from export.default_model import pretrained_model_dir
    from export.head_swap import read_head
    from genba.bundle import verify_directory

    bundle, trust = export_or_reuse(argparse.Namespace(bundle=None, trust=None, out=out / "default"))
    head = read_head(verify_directory(bundle, None))
    np.savez(out / "head.npz", weight=head.weight, bias=head.bias)
    return bundle, trust, pretrained_model_dir(), out / "head.npz"


def _texts() -> list[str]:
    from export.datasets import central_split  # the generator alone: no torch, onnx or optimum

    return [report.text for report in central_split(seed=0, n_eval=1000).eval]


def _device() -> dict[str, Any]:
    import onnxruntime as ort

    info: dict[str, Any] = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


if __name__ == "__main__":
    raise SystemExit(main())
