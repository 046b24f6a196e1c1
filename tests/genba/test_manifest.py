"""The typed manifest: parsed once, refused with the key named, written back byte for byte."""

from __future__ import annotations

import ast
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba import bundle, keys
from genba.bundle import BundleWriter, Manifest
from genba.errors import BundleFormatError

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("genba", "export", "edge_agent", "server", "gui", "bench", "scripts")
#: The one place a manifest is a dict: where it is parsed and written.
OWNERS = {Path("genba/bundle.py"), Path("genba/manifest.py")}


def _raw(path: Path) -> bytes:
    return (path / bundle.MANIFEST_NAME).read_bytes()


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(_raw(path)))


@pytest.fixture(scope="module")
def swapped(bert_bundle: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A head swap of the tiny BERT bundle: a parent in its lineage, a new report in its validation."""
    from export.graphs import HeadWeights
    from export.head_swap import read_head, write_head_swap

    parent = bundle.verify_directory(bert_bundle, None)
    head = read_head(parent)
    out = tmp_path_factory.mktemp("manifest") / "swapped"
    write_head_swap(
        parent, HeadWeights(head.weight, head.bias + np.float32(0.5)), out, keys.load_private_key(keypair[0]),
        source={"kind": "federated", "run": "r1"}, report_key="federated_training", report={"sites": 2},
        version=2, lineage_fields={"federated_run": "r1", "round": 3},
    )  # fmt: skip
    return out


@pytest.mark.parametrize("which", ["exported", "head swap"])
def test_a_real_bundle_round_trips_byte_for_byte(bert_bundle: Path, swapped: Path, which: str) -> None:
    path = bert_bundle if which == "exported" else swapped
    manifest = bundle.verify_directory(path, None).manifest
    assert bundle.canonical_bytes(manifest.to_json()) == _raw(path)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.to_json() == _json(path)


def test_the_typed_fields_say_what_the_json_says(bert_bundle: Path, swapped: Path) -> None:
    exported = bundle.verify_directory(bert_bundle, None).manifest
    assert exported.labels == ("ok", "scratch", "dent") and exported.task == "text-classification"
    assert exported.graphs["head"].file == "head.onnx" and exported.input.kind == "text"
    assert exported.files["head.onnx"].bytes == (bert_bundle / "head.onnx").stat().st_size
    assert exported.lineage.parent is None and exported.signer is not None
    child = bundle.verify_directory(swapped, None).manifest
    assert str(child.version) == "2" and child.lineage.parent is not None
    assert child.lineage.parent.version == exported.version
    assert (child.lineage.federated_run, child.lineage.round, child.lineage.rollback) == ("r1", 3, False)
    assert (child.validation or {})["federated_training"]["sites"] == 2


def test_a_parsed_manifest_is_its_own_copy(bert_bundle: Path) -> None:
    data = _json(bert_bundle)
    manifest = Manifest.from_json(data)
    data["model"]["name"] = "changed"
    written = manifest.to_json()
    written["validation"]["changed"] = True
    assert manifest.model.name == "tiny-bert" and "changed" not in (manifest.validation or {})
    with pytest.raises(AttributeError):
        manifest.task = "other"  # type: ignore[misc]


def _without(data: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        data = data[key]
    del data[path[-1]]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("task",), "'task'"),
        (("model", "version"), "'model.version'"),
        (("input", "kind"), "'input.kind'"),
        (("graphs", "head", "file"), "\"graphs['head'].file\""),
        (("files", "head.onnx", "sha256"), "\"files['head.onnx'].sha256\""),
        (("opset",), "'opset'"),
    ],
)
def test_a_missing_key_is_refused_naming_it(bert_bundle: Path, path: tuple[str, ...], named: str) -> None:
    data = _json(bert_bundle)
    _without(data, path)
    with pytest.raises(BundleFormatError) as refused:
        Manifest.from_json(data)
    message = str(refused.value)
    assert f"has no {named}" in message and "re-export" in message and "\n" not in message


@pytest.mark.parametrize(
    ("path", "value", "named", "kind"),
    [
        (("model", "version"), "1", "'model.version'", "an integer"),
        (("task",), 3, "'task'", "a string"),
        (("opset",), True, "'opset'", "an integer"),
        (("labels",), "ok,scratch", "'labels'", "a list"),
        (("files", "head.onnx", "bytes"), 1.5, "\"files['head.onnx'].bytes\"", "an integer"),
        (("lineage", "rollback"), "no", "'lineage.rollback'", "true or false"),
        (("reference_stats",), [], "'reference_stats'", "an object"),
    ],
)
def test_a_wrongly_typed_key_is_refused_naming_it(
    bert_bundle: Path, path: tuple[str, ...], value: Any, named: str, kind: str
) -> None:
    data = _json(bert_bundle)
    _set(data, path, value)
    with pytest.raises(BundleFormatError, match="re-export") as refused:
        Manifest.from_json(data)
    assert f"key {named} must be {kind}" in str(refused.value)


def test_labels_must_be_strings_and_the_format_version_known(bert_bundle: Path) -> None:
    data = _json(bert_bundle)
    with pytest.raises(BundleFormatError, match="'labels' must list strings"):
        Manifest.from_json({**data, "labels": ["ok", 2]})
    with pytest.raises(BundleFormatError, match="format version 2 is not supported"):
        Manifest.from_json({**data, "format_version": 2})
    with pytest.raises(BundleFormatError, match="no file table"):
        Manifest.from_json({k: v for k, v in data.items() if k != "files"})


def test_a_stored_copy_that_is_no_manifest_reads_as_none(bert_bundle: Path) -> None:
    assert Manifest.from_record({}) is None and Manifest.from_record({"labels": ["ok"]}) is None
    assert Manifest.from_record(_json(bert_bundle)) == bundle.verify_directory(bert_bundle, None).manifest


def _future(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as a newer Genba might write it: keys this release does not know, and nulls."""
    future = copy.deepcopy(data)
    future["deployment_window"] = {"from": "22:00", "to": "06:00"}
    future["model"]["owner"] = "quality team"
    future["files"]["head.onnx"]["compressed"] = False
    future["graphs"]["head"]["opset_imports"] = [{"domain": "", "version": 18}]
    future["lineage"]["approved_by"] = None
    future["input"]["lowercase"] = True
    future["precision"] = None  # a known, optional key written as null
    return future


def test_unknown_keys_and_nulls_survive_the_round_trip(bert_bundle: Path) -> None:
    future = _future(_json(bert_bundle))
    manifest = Manifest.from_json(future)
    assert manifest.to_json() == future
    assert bundle.canonical_bytes(manifest.to_json()) == bundle.canonical_bytes(future)
    assert manifest.extra["deployment_window"] == {"from": "22:00", "to": "06:00"}
    assert manifest.model.extra == {"owner": "quality team"} and manifest.precision is None


def test_a_bundle_from_a_newer_genba_verifies_and_keeps_its_keys_when_resigned(
    bert_bundle: Path, keypair: tuple[Path, Path], other_keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """Unknown keys are signed; dropping one would make the signature fail everywhere.

    Re-signing keeps every key but the file table and the signer, which the writer makes anew.
    """
    copy_dir = Path(shutil.copytree(bert_bundle, tmp_path / "future"))
    raw = bundle.canonical_bytes(_future(_json(bert_bundle)))
    (copy_dir / bundle.MANIFEST_NAME).write_bytes(raw)
    (copy_dir / bundle.SIGNATURE_NAME).write_bytes(keys.sign(keys.load_private_key(keypair[0]), raw))
    verified = bundle.verify_directory(copy_dir, [keys.load_public_key(keypair[1])])
    assert bundle.canonical_bytes(verified.manifest.to_json()) == raw
    resigned = bundle.sign_existing(copy_dir, keys.load_private_key(other_keypair[0]), tmp_path / "resigned")
    again = bundle.verify_directory(resigned, [keys.load_public_key(other_keypair[1])]).manifest
    assert again.extra["deployment_window"] == verified.manifest.extra["deployment_window"]
    rewritten = {"files", "signer"}
    assert {k: v for k, v in again.to_json().items() if k not in rewritten} == {
        k: v for k, v in verified.manifest.to_json().items() if k not in rewritten
    }


def test_a_writer_refuses_to_sign_a_manifest_a_reader_would_refuse(bert_bundle: Path, tmp_path: Path) -> None:
    fields = {k: v for k, v in _json(bert_bundle).items() if k not in {"files", "signer", "task"}}
    out = tmp_path / "half"
    with pytest.raises(BundleFormatError, match="'task'"), BundleWriter(out) as writer:
        (writer.root / "head.onnx").write_bytes((bert_bundle / "head.onnx").read_bytes())
        writer.commit(fields, None)
    assert not out.exists()


# ---------------------------------------------------------------- no dict lookups elsewhere


def _is_manifest(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "manifest") or (
        isinstance(node, ast.Attribute) and node.attr == "manifest"
    )


def manifest_lookups(source: str, filename: str = "<source>") -> list[str]:
    """Each ``manifest[...]`` or ``manifest.get(...)`` (on a name or an attribute) in ``source``."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        subscript = isinstance(node, ast.Subscript) and _is_manifest(node.value)
        get = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_manifest(node.func.value)
        )
        if subscript or get:
            line, column = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
            found.append((line, column, f"{filename}:{line}: {ast.unparse(node)}"))
    return [hit for _, _, hit in sorted(found)]


def test_the_scan_finds_lookups_on_names_and_attributes() -> None:
    source = (
        "kind = manifest['input']['kind']\n"
        "labels = bundle.manifest.get('labels')\n"
        "files = self.identity.manifest['files']\n"
        "fine = manifest.input.kind, other['manifest'], manifest_sha256.get('x')\n"
    )
    assert [hit.split(": ", 1)[1] for hit in manifest_lookups(source)] == [
        "manifest['input']",
        "bundle.manifest.get('labels')",
        "self.identity.manifest['files']",
    ]


def test_nothing_outside_genba_bundle_reads_a_manifest_as_a_dict() -> None:
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative not in OWNERS:
                found += manifest_lookups(path.read_text(encoding="utf-8"), relative.as_posix())
    assert not found, "read the typed Manifest's attributes instead:\n" + "\n".join(found)
