"""``ImagePreprocessing``: the normalization a model was trained with, stated, never guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export import ImagePreprocessing, from_torch
from genba import bundle
from genba.cli import main
from genba.errors import ConfigError, ModelSourceError, UsageError
from genba.runtime import BundleModel, RuntimeConfig

MNIST_MEAN, MNIST_STD = (0.1307,) * 3, (0.3081,) * 3
LABELS = ("zero", "one", "two")


def test_mean_and_std_have_no_default() -> None:
    with pytest.raises(TypeError, match="mean"):
        ImagePreprocessing(28, 28)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="std"):
        ImagePreprocessing(28, 28, mean=MNIST_MEAN)  # type: ignore[call-arg]


@pytest.mark.parametrize("values", [(0.1307,), (0.5, 0.5, 0.5, 0.5)])
def test_mean_that_is_not_one_value_per_rgb_channel_is_refused(values: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        ImagePreprocessing(28, 28, mean=values, std=MNIST_STD)  # type: ignore[arg-type]
    message = str(caught.value)
    assert isinstance(caught.value, UsageError) and "\n" not in message
    assert f"mean has {len(values)} value(s)" in message and "3 RGB channels" in message
    assert "(0.1307,) * 3" in message  # says what to do


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        ImagePreprocessing(0, -4, mean=(0.5, 0.5, 0.5), std=(0.2, 0.0, 0.2), rescale_factor=0.0, resample=9)
    problems = " | ".join(caught.value.problems)
    for part in ("std values must be > 0", "height", "width", "rescale_factor", "resample"):
        assert part in problems


def test_explicit_values_are_stored_as_plain_numbers() -> None:
    pre = ImagePreprocessing(28, 28, mean=np.array(MNIST_MEAN), std=list(MNIST_STD))  # type: ignore[arg-type]
    assert pre.mean == MNIST_MEAN and pre.std == MNIST_STD and pre.normalization == "explicit"
    assert json.dumps(pre.spec(Path("."))) == json.dumps(pre.spec(Path(".")))  # JSON-ready


def _processor_config(folder: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": 32, "width": 48},
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    config.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    return folder


def test_from_image_processor_reads_the_processor_it_was_trained_with(tmp_path: Path) -> None:
    folder = _processor_config(tmp_path / "proc")
    pre = ImagePreprocessing.from_image_processor(folder)
    assert pre == ImagePreprocessing.from_image_processor(folder / "preprocessor_config.json")
    assert (pre.height, pre.width, pre.resample) == (32, 48, 3)
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)
    assert pre.spec(tmp_path)["normalization"] == "image-processor"


def test_from_image_processor_honours_its_switches(tmp_path: Path) -> None:
    folder = _processor_config(
        tmp_path / "p", size={"shortest_edge": 40}, do_rescale=False, do_normalize=False, image_mean=None
    )
    pre = ImagePreprocessing.from_image_processor(folder)
    assert (pre.height, pre.width, pre.rescale_factor) == (40, 40, 1.0)
    assert pre.mean == (0.0, 0.0, 0.0) and pre.std == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"image_mean": None}, "states no image_mean/image_std"),
        ({"image_mean": [0.5]}, "mean has 1 value(s)"),
        ({"size": {"longest_edge": 64}}, "gives no image size"),
        ({"do_normalize": "yes"}, "do_normalize must be true or false"),
    ],
)
def test_from_image_processor_refuses_what_it_cannot_apply(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    folder = _processor_config(tmp_path / "p", **overrides)
    with pytest.raises(ModelSourceError) as caught:
        ImagePreprocessing.from_image_processor(folder)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_from_image_processor_without_a_config_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="no image processor config at"):
        ImagePreprocessing.from_image_processor(tmp_path)


def test_from_image_processor_matches_the_hugging_face_export_path(tiny_vit: Path, tmp_path: Path) -> None:
    from export.onnx_export import save_image_preprocessing

    hf_spec = save_image_preprocessing(tiny_vit, tmp_path / "preprocess")
    ours = ImagePreprocessing.from_image_processor(tiny_vit).spec(tmp_path)
    assert {key: ours[key] for key in hf_spec} == hf_spec


class _Digits:
    """A tiny CNN classifier and a few PIL images standing in for scanned digits."""

    @staticmethod
    def model() -> Any:
        import torch

        class Digits(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = torch.nn.Sequential(
                    torch.nn.Conv2d(3, 6, 3, stride=2),
                    torch.nn.ReLU(),
                    torch.nn.AdaptiveAvgPool2d(1),
                    torch.nn.Flatten(),
                    torch.nn.Linear(6, len(LABELS)),
                )

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.body(pixel_values)

        torch.manual_seed(3)
        return Digits().eval()

    @staticmethod
    def images() -> list[Any]:
        from PIL import Image

        rng = np.random.default_rng(7)
        grey = [  # dark to light, as scans vary
            Image.fromarray(rng.integers(low, low + 64, (30, 26), dtype=np.uint8), "L")
            for low in (0, 64, 128, 192)
        ]
        colour = [Image.fromarray(rng.integers(0, 256, (20, 36, 3), dtype=np.uint8), "RGB") for _ in range(2)]
        return grey + colour

    @staticmethod
    def normalized(images: list[Any], mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
        """What the model was trained on, computed here with numpy, not with Genba's preprocessing."""
        from PIL import Image

        batch = []
        for image in images:
            pixels = np.asarray(image.convert("RGB").resize((28, 28), Image.Resampling.BILINEAR), np.float64)
            batch.append(((pixels / 255.0 - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1))
        return np.stack(batch).astype(np.float32)


def _export_digits(out: Path) -> Path:
    import torch

    return from_torch(
        _Digits.model(),
        {"pixel_values": torch.randn(1, 3, 28, 28)},
        out,
        task="image-classification",
        preprocessing=ImagePreprocessing(28, 28, mean=MNIST_MEAN, std=MNIST_STD),
        labels=LABELS,
    ).bundle


def test_bundle_predicts_as_torch_fed_the_training_normalization(tmp_path: Path) -> None:
    import torch

    path = _export_digits(tmp_path / "digits")
    model = BundleModel(bundle.verify_directory(path, None), RuntimeConfig(provider="cpu"))
    images = _Digits.images()
    module = _Digits.model()
    with torch.inference_mode():
        expected = module(torch.from_numpy(_Digits.normalized(images, MNIST_MEAN, MNIST_STD))).numpy()
        guessed = module(torch.from_numpy(_Digits.normalized(images, (0.5,) * 3, (0.5,) * 3))).numpy()
    logits = model.run(images)["logits"]
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    labels = [p.label for p in model.predict(images)]
    assert labels == [LABELS[i] for i in expected.argmax(axis=1)] and len(set(labels)) > 1
    # a 0.5/0.5 guess would change answers, so this test would notice one
    assert labels != [LABELS[i] for i in guessed.argmax(axis=1)]


def test_manifest_and_bundle_info_show_the_input_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _export_digits(tmp_path / "digits")
    manifest = bundle.verify_directory(path, None).manifest
    expected = {
        "kind": "image",
        "height": 28,
        "width": 28,
        "rescale_factor": pytest.approx(1 / 255),
        "mean": [0.1307] * 3,
        "std": [0.3081] * 3,
        "resample": 2,
        "normalization": "explicit",
        "graph_inputs": ["pixel_values"],
    }
    assert manifest.input.to_json() == expected
    assert main(["bundle", "info", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input"] == expected
    assert info["labels"] == list(LABELS) and info["graphs"] == {"model": "model.onnx"}


def test_the_hugging_face_path_honours_the_processors_switches(tiny_vit: Path, tmp_path: Path) -> None:
    """A processor that neither rescales nor normalizes must not get 1/255 or a mean/std."""
    import json
    import shutil

    from export.onnx_export import save_image_preprocessing

    model = Path(shutil.copytree(tiny_vit, tmp_path / "vit"))
    config_file = model / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    spec = save_image_preprocessing(model, tmp_path / "as-is")
    assert (
        spec["mean"] == [float(v) for v in config["image_mean"]]
        and spec["normalization"] == "image-processor"
    )
    config.update(do_normalize=False, do_rescale=False)
    config_file.write_text(json.dumps(config))
    plain = save_image_preprocessing(model, tmp_path / "plain")
    assert (plain["mean"], plain["std"], plain["rescale_factor"]) == ([0.0] * 3, [1.0] * 3, 1.0)
