"""Kernel subcommands: ``keys``, ``bundle`` and ``predict`` (thin shells over the library)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genba.errors import InputFileError, UsageError, located

if TYPE_CHECKING:
    from genba.manifest import Manifest


def register(subparsers: Any) -> None:
    _register_keys(subparsers)
    _register_bundle(subparsers)
    _register_predict(subparsers)


# ------------------------------------------------------------------ keys


def _register_keys(subparsers: Any) -> None:
    keys_parser = subparsers.add_parser("keys", help="create signing keys")
    actions = keys_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="write an Ed25519 key pair: KEYFILE (0600) and KEYFILE.pub")
    new.add_argument("--out", type=Path, required=True, help="private key path; the public key gets .pub")
    new.set_defaults(handler=_keys_new)


def _keys_new(args: argparse.Namespace) -> int:
    from genba import keys

    key = keys.generate_signing_key()
    private, public = keys.write_key_pair(key, args.out)
    print(
        json.dumps(
            {"private_key": str(private), "public_key": str(public), "key_id": keys.key_id(key.public_key())}
        )
    )
    return 0


# ------------------------------------------------------------------ bundle


def _register_bundle(subparsers: Any) -> None:
    bundle_parser = subparsers.add_parser("bundle", help="verify, inspect, sign and pack bundles")
    actions = bundle_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check every file hash and the signature")
    verify.add_argument("bundle", type=Path, help="bundle directory, .tar or .zip")
    verify.add_argument(
        "--trust", type=Path, action="append", required=True, help="trusted public key (repeatable)"
    )
    verify.set_defaults(handler=_bundle_verify)
    info = actions.add_parser("info", help="print what a bundle holds (checks integrity, not trust)")
    info.add_argument("bundle", type=Path)
    info.add_argument("--json", action="store_true", help="print the whole manifest")
    info.set_defaults(handler=_bundle_info)
    sign = actions.add_parser("sign", help="write a signed copy of an unsigned (or re-signed) bundle")
    sign.add_argument("bundle", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="Ed25519 private key (PEM)")
    sign.add_argument("--out", type=Path, required=True)
    sign.set_defaults(handler=_bundle_sign)
    pack = actions.add_parser("pack", help="write a bundle as one .tar or .zip for transport")
    pack.add_argument("bundle", type=Path)
    pack.add_argument("--out", type=Path, required=True, help="archive path ending in .tar or .zip")
    pack.set_defaults(handler=_bundle_pack)


def _trusted(paths: list[Path]) -> list[Any]:
    from genba import keys

    return [keys.load_public_key(path) for path in paths]


def _bundle_verify(args: argparse.Namespace) -> int:
    from genba.bundle import open_verified

    with open_verified(args.bundle, _trusted(args.trust)) as verified:
        model = verified.manifest.model
        print(
            json.dumps(
                {
                    "valid": True,
                    "bundle": str(args.bundle),
                    "model": model.name,
                    "version": model.release,
                    "signer_key_id": verified.signer_key_id,
                    "files": len(verified.manifest.files),
                }
            )
        )
    return 0


def _bundle_info(args: argparse.Namespace) -> int:
    from genba.bundle import open_verified

    with open_verified(args.bundle, trusted=None) as verified:
        manifest = verified.manifest
    if args.json:
        print(json.dumps(manifest.to_json(), indent=2, sort_keys=True))
        return 0
    print(json.dumps(summarize(manifest), indent=2))
    return 0


def summarize(manifest: Manifest) -> dict[str, Any]:
    validation = manifest.validation or {}
    chosen: dict[str, Any] = next((c for c in validation.get("candidates", []) if c.get("chosen")), {})
    return {
        "model": manifest.model.to_json(),
        "task": manifest.task,
        "labels": None if manifest.labels is None else list(manifest.labels),
        "input": _input_summary(manifest.input.to_json()),
        "graphs": {role: spec.file for role, spec in manifest.graphs.items()},
        "precision": manifest.precision.to_json() if manifest.precision else None,
        "variants": {
            target: {
                "provider": entry.provider,
                "precision": entry.precision.variant if entry.precision else None,
                "graphs": {role: spec.file for role, spec in entry.graphs.items()},
            }
            for target, entry in (manifest.variants or {}).items()
        },
        "signed_by": manifest.signer.key_id if manifest.signer else None,
        "chosen_variant": validation.get("chosen"),
        "chosen_figures": {
            k: chosen.get(k)
            for k in ("latency_ms_b1", "mean_cosine", "max_abs_diff", "accuracy", "accuracy_delta_pts")
        },
        "torch_accuracy": validation.get("torch_accuracy"),
        "lineage": manifest.lineage.to_json(),
        "bytes": sum(entry.bytes for entry in manifest.files.values()),
    }


_INPUT_KEYS = {
    "text": ("kind", "max_length", "tokenizer", "graph_inputs"),
    "image": (
        "kind",
        "height",
        "width",
        "rescale_factor",
        "mean",
        "std",
        "resample",
        "normalization",
        "graph_inputs",
    ),
}


def _input_summary(spec: dict[str, Any]) -> dict[str, Any]:
    """What a site feeds the graphs; an image bundle's normalization is where accuracy is lost silently."""
    keys = _INPUT_KEYS.get(str(spec.get("kind")), ("kind", "graph_inputs"))
    return {key: spec[key] for key in keys if key in spec}


def _bundle_sign(args: argparse.Namespace) -> int:
    from genba import keys
    from genba.bundle import sign_existing

    out = sign_existing(args.bundle, keys.load_private_key(args.key), args.out)
    print(json.dumps({"signed": str(out)}))
    return 0


def _bundle_pack(args: argparse.Namespace) -> int:
    from genba.archive import pack
    from genba.bundle import open_verified

    with open_verified(args.bundle, trusted=None) as verified:
        out = pack(verified.path, args.out)
    print(json.dumps({"archive": str(out)}))
    return 0


# ------------------------------------------------------------------ predict


def _register_predict(subparsers: Any) -> None:
    predict = subparsers.add_parser("predict", help="run a bundle on text, an image or a JSONL file")
    predict.add_argument("bundle", type=Path, help="bundle directory, .tar or .zip")
    predict.add_argument(
        "--trust", type=Path, action="append", help="also verify the signature with this key"
    )
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one text input")
    source.add_argument("--image", type=Path, help="one image file (image bundles)")
    source.add_argument("--input", type=Path, help="JSONL file: one {'text': ...} or {'image': ...} per line")
    predict.add_argument("--provider", choices=("auto", "gpu", "cpu"), default="auto")
    predict.add_argument("--threads", type=int, default=0, help="intra-op threads (0: one per core)")
    predict.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from genba.bundle import open_verified
    from genba.inputs import read_jsonl
    from genba.runtime import BundleModel, RuntimeConfig

    items: list[Any]
    wheres: list[str]  # what an error names: the file and line, or the --image file
    if args.input is not None:
        examples = read_jsonl(args.input, "input")
        items, wheres = [e.payload for e in examples], [e.where for e in examples]
    elif args.image is not None:
        items, wheres = [args.image], [""]
    else:
        items, wheres = [args.text], [""]
    trusted = _trusted(args.trust) if args.trust else None
    with open_verified(args.bundle, trusted) as verified:
        kind = verified.manifest.input.kind
        if kind != ("text" if isinstance(items[0], str) else "image"):
            raise UsageError(f"this bundle takes {kind} input; use --{kind} or an --input file of {kind}s")
        model = BundleModel(verified, RuntimeConfig(provider=args.provider, intra_op_threads=args.threads))
        for item, where in zip(items, wheres, strict=True):
            try:
                (prediction,) = model.predict([item])
            except InputFileError as error:
                if not where:
                    raise
                raise located(error, where) from error
            print(json.dumps({**prediction.to_json(), "variant": model.variant}), flush=True)
    sys.stdout.flush()
    return 0
