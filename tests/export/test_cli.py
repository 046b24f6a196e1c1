"""``genba export`` and friends from the command line: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genba.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fp32_export(model: Path, out: Path) -> list[str]:
    return ["export", str(model), "--task", "text-classification", "--out", str(out), "--precision", "fp32"]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_export_prints_the_report_and_writes_a_signed_bundle(
    capsys: pytest.CaptureFixture[str], tiny_bert: Path, keypair: tuple[Path, Path], out_dir: Path
) -> None:
    code, out, _ = _run(capsys, *_fp32_export(tiny_bert, out_dir / "b"), "--signing-key", str(keypair[0]))
    assert code == 0
    assert json.loads(out)["validation"]["chosen"] == "fp32"
    code, out, _ = _run(capsys, "bundle", "verify", str(out_dir / "b"), "--trust", str(keypair[1]))
    assert code == 0 and json.loads(out)["valid"] is True


def _bad_exports(tiny_bert: Path, tiny_fnet: Path, tmp: Path, out: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    bad_json = tmp / "bad.jsonl"
    bad_json.write_text("{this is not json}\n")
    unknown_label = tmp / "eval-unknown.jsonl"
    unknown_label.write_text('{"text": "dent", "label": "crack"}\n')
    a_file = tmp / "a-file"
    a_file.write_text("x")
    base = ["--task", "text-classification", "--out", str(out)]
    model = [str(tiny_bert), *base]
    return {
        "missing dir": ([str(tmp / "nope"), *base], "model directory"),
        "not a model": ([str(empty), *base], "is not a model directory (no config.json)"),
        "unknown task": ([str(tiny_bert), "--task", "translation", "--out", str(out)], "invalid choice"),
        "unsupported architecture": ([str(tiny_fnet), *base], "architecture 'fnet' is not supported"),
        "label mismatch": ([*model, "--labels", "a,b"], "label count mismatch"),
        "missing calibration": ([*model, "--calibration", str(tmp / "no.jsonl")], "calibration file"),
        "unreadable eval": ([*model, "--eval", str(bad_json)], "eval file"),
        "eval of unknown label": ([*model, "--eval", str(unknown_label)], "not one of the model's labels"),
        "missing key": ([*model, "--signing-key", str(tmp / "no.pem")], "key file"),
        "unwritable output": (
            [str(tiny_bert), "--task", "text-classification", "--out", str(a_file / "bundle")],
            "cannot write",
        ),
    }


CASES = [
    "missing dir",
    "not a model",
    "unknown task",
    "unsupported architecture",
    "label mismatch",
    "missing calibration",
    "unreadable eval",
    "eval of unknown label",
    "missing key",
    "unwritable output",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
    tiny_bert: Path,
    tiny_fnet: Path,
    tmp_path: Path,
    out_dir: Path,
    case: str,
) -> None:
    argv, message = _bad_exports(tiny_bert, tiny_fnet, tmp_path, out_dir / "bundle")[case]
    code, _, err = _run(capsys, "export", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, f"expected one line on stderr: {err!r}"
    assert message in err
    assert _leftovers(out_dir) == []
    assert (tmp_path / "a-file").is_file()


def test_gate_failure_exits_non_zero_with_the_report(
    capsys: pytest.CaptureFixture[str], tiny_bert: Path, text_eval_file: Path, out_dir: Path
) -> None:
    argv = _fp32_export(tiny_bert, out_dir / "b")
    code, out, err = _run(capsys, *argv, "--eval", str(text_eval_file), "--max-accuracy-drop", "-1")
    assert code == 4
    assert json.loads(out)["bundle"] is None
    assert "no variant passed its gates" in _errors(err)[0]
    assert _leftovers(out_dir) == []


def test_keys_new_then_verify_refuses_a_wrong_key(
    capsys: pytest.CaptureFixture[str], bert_bundle: Path, tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, "keys", "new", "--out", str(tmp_path / "k.pem"))
    assert code == 0 and Path(json.loads(out)["public_key"]).exists()
    code, _, err = _run(capsys, "bundle", "verify", str(bert_bundle), "--trust", str(tmp_path / "k.pem.pub"))
    assert code == 3 and "signature invalid" in err


def test_bundle_info_and_pack(capsys: pytest.CaptureFixture[str], bert_bundle: Path, tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "bundle", "info", str(bert_bundle))
    info = json.loads(out)
    assert code == 0 and info["graphs"] == {"backbone": "backbone.onnx", "head": "head.onnx"}
    assert info["variants"] == {
        "cpu": {"provider": "CPUExecutionProvider", "precision": "fp32",
                "graphs": {"backbone": "backbone.onnx", "head": "head.onnx"}},
        "cuda": {"provider": "CUDAExecutionProvider", "precision": "fp16",
                 "graphs": {"backbone": "backbone-cuda.onnx", "head": "head.onnx"}},
    }  # fmt: skip
    code, _, _ = _run(capsys, "bundle", "pack", str(bert_bundle), "--out", str(tmp_path / "b.zip"))
    assert code == 0
    code, out, _ = _run(capsys, "bundle", "info", str(tmp_path / "b.zip"))
    assert code == 0 and json.loads(out)["model"] == info["model"]


def test_predict_text_and_jsonl(
    capsys: pytest.CaptureFixture[str], bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    code, out, _ = _run(
        capsys, "predict", str(bert_bundle), "--trust", str(keypair[1]), "--text", "dent on rim"
    )
    answer = json.loads(out)
    assert code == 0 and answer["provider"] == "CPUExecutionProvider" and answer["variant"] == "cpu"
    assert (
        answer["label"] in ("ok", "scratch", "dent") and 0 < answer["score"] <= 1 and answer["latency_ms"] > 0
    )
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "a"}\n{"text": "b"}\n{"text": "scratch"}\n')
    code, out, _ = _run(capsys, "predict", str(bert_bundle), "--input", str(inputs))
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_predict_refuses_a_tampered_bundle(capsys: pytest.CaptureFixture[str], bundle_copy: Path) -> None:
    target = bundle_copy / "backbone.onnx"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x10
    target.write_bytes(bytes(data))
    code, out, err = _run(capsys, "predict", str(bundle_copy), "--text", "dent")
    assert code == 3 and out == "" and "backbone.onnx does not match its hash" in err
