"""Bad pictures on the command line and in export: one line naming the file, exit 2, no traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.cli import main
from genba.errors import ImageTooLargeError, InputFileError, ModelSourceError

LABELS = ("ok", "crack")
MEAN, STD = (0.5,) * 3, (0.25,) * 3


def _cnn(channels: int = 3) -> Any:
    import torch

    class Cnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(channels, 4, 3, stride=2),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(4, len(LABELS)),
            )

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.body(pixel_values)

    torch.manual_seed(0)
    return Cnn().eval()


def _export(out: Path, channels: int = 3, **options: Any) -> Path:
    import torch

    from export import ImagePreprocessing, from_torch

    return from_torch(
        _cnn(channels),
        {"pixel_values": torch.randn(1, channels, 16, 16)},
        out,
        task="image-classification",
        preprocessing=ImagePreprocessing(16, 16, mean=MEAN, std=STD),
        labels=LABELS,
        **options,
    ).bundle


@pytest.fixture(scope="module")
def cnn_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("cnn") / "bundle")


def _png(size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def bad_pictures(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each bad picture made here with Pillow, and the words its error must carry."""
    from PIL import Image

    good = _png()
    pictures = {
        "truncated": (good[: len(good) // 2], "cannot be decoded (image file is truncated"),
        "corrupted": (good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:], "cannot be decoded"),
        "not an image": (b"hello, this is text", "cannot be decoded"),
    }
    paths = {}
    for name, (data, words) in pictures.items():
        path = folder / f"{name.replace(' ', '-')}.png"
        path.write_bytes(data)
        paths[name] = (path, words)
    for name, size in (("over the limit", (7000, 7000)), ("a decompression bomb", (15000, 15000))):
        path = folder / f"{name.replace(' ', '-')}.png"
        Image.new("1", size).save(path)  # 1 bit a pixel: a small file of many pixels
        paths[name] = (path, "is too large")
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_good_picture_is_answered(
    cnn_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "good.png"
    picture.write_bytes(_png())
    code, out, err = _run(capsys, "predict", str(cnn_bundle), "--image", str(picture))
    assert code == 0, err
    assert json.loads(out)["label"] in LABELS


def test_each_bad_picture_ends_in_one_line_naming_the_file_and_exit_2(
    cnn_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (path, words) in bad_pictures(tmp_path).items():
        code, out, err = _run(capsys, "predict", str(cnn_bundle), "--image", str(path))
        assert code == 2, (name, code, err)
        assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert str(path) in err and words in err, (name, err)
        assert ("send a smaller picture" if "large" in words else "send a complete PNG") in err, err


def test_a_huge_picture_is_refused_from_its_header_as_too_large(tmp_path: Path) -> None:
    from genba.images import open_image

    path = bad_pictures(tmp_path)["a decompression bomb"][0]
    with pytest.raises(ImageTooLargeError, match=r"225,000,000 pixels; the limit is 40,000,000") as caught:
        open_image(path, f"image {path}")
    assert caught.value.exit_code == 2 and caught.value.status == 413


def test_a_missing_picture_on_line_4_names_the_file_and_line_and_answers_nothing(
    cnn_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(3):
        (tmp_path / f"{index}.png").write_bytes(_png(seed=index))
    inputs = tmp_path / "inputs.jsonl"
    lines = [{"image": f"{index}.png"} for index in range(3)] + [{"image": "gone.png"}]
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, err = _run(capsys, "predict", str(cnn_bundle), "--input", str(inputs))
    assert code == 2 and out == "", err  # checked before the first answer, not after three
    assert f"input file {inputs}, line 4: image {tmp_path / 'gone.png'} not found" in err
    assert len(err.strip().splitlines()) == 1


def test_a_corrupt_picture_on_line_3_names_the_file_and_line(
    cnn_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pictures = bad_pictures(tmp_path)
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "b.png").write_bytes(_png(seed=1))
    inputs = tmp_path / "inputs.jsonl"
    names = ["a.png", "b.png", pictures["truncated"][0].name, "a.png"]
    inputs.write_text("".join(json.dumps({"image": name}) + "\n" for name in names))
    code, out, err = _run(capsys, "predict", str(cnn_bundle), "--input", str(inputs))
    assert code == 2 and len(out.strip().splitlines()) == 2
    assert f"input file {inputs}, line 3: image {pictures['truncated'][0]} cannot be decoded" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_corrupt_picture_in_eval_data_names_the_file_and_nothing_is_written(tmp_path: Path) -> None:
    pictures = bad_pictures(tmp_path)
    (tmp_path / "a.png").write_bytes(_png())
    eval_file = tmp_path / "eval.jsonl"
    rows = [{"image": "a.png", "label": "ok"}, {"image": pictures["corrupted"][0].name, "label": "crack"}]
    eval_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "bundle"
    with pytest.raises(InputFileError) as caught:
        _export(out, eval=eval_file)
    message = str(caught.value)
    assert f"image {pictures['corrupted'][0]} cannot be decoded" in message and "\n" not in message
    assert not out.exists()


def test_a_one_channel_model_is_refused_by_name_before_export(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as caught:
        _export(tmp_path / "grey", channels=1)
    message = str(caught.value)
    assert "'pixel_values' has shape [1, 1, 16, 16] (1 channel(s))" in message and "\n" not in message
    assert "3 RGB channels" in message and "x.mean(dim=1, keepdim=True)" in message
    assert caught.value.exit_code == 2 and not (tmp_path / "grey").exists()
