"""``export.from_torch``: a plain torch module becomes a validated bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export import ImagePreprocessing, from_torch
from genba import bundle
from genba.errors import UsageError
from genba.runtime import BundleModel, RuntimeConfig

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, stated as a user must


class _Backbone:
    @staticmethod
    def build() -> object:
        import torch

        class Backbone(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = torch.nn.Sequential(
                    torch.nn.Conv2d(3, 8, 3, stride=2),
                    torch.nn.ReLU(),
                    torch.nn.AdaptiveAvgPool2d(1),
                    torch.nn.Flatten(),
                )

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.body(pixel_values)

        torch.manual_seed(0)
        return Backbone()


def test_module_with_a_linear_head_becomes_a_two_graph_bundle(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    backbone, head = _Backbone.build(), torch.nn.Linear(8, 2)
    result = from_torch(
        backbone,
        {"pixel_values": torch.randn(1, 3, 32, 32)},
        tmp_path / "b",
        task="image-classification",
        preprocessing=ImagePreprocessing(32, 32, mean=_MEAN, std=_STD),
        labels=("ok", "crack"),
        head=head,
    )
    assert set(result.manifest.graphs) == {"backbone", "head"}
    assert (result.manifest.lineage.source or {})["library"] == "torch"
    model = BundleModel(bundle.verify_directory(result.bundle, None), RuntimeConfig(provider="cpu"))
    pixels = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    feeds = model.preprocessor.encode([pixels])
    with torch.inference_mode():
        expected = head(backbone(torch.from_numpy(feeds["pixel_values"]))).numpy()  # type: ignore[operator]
    np.testing.assert_allclose(model.graphs.run_feeds(feeds)["logits"], expected, atol=1e-5)


def test_module_without_head_is_one_graph(tmp_path: Path) -> None:
    import torch

    classifier = torch.nn.Sequential(_Backbone.build(), torch.nn.Linear(8, 3))  # type: ignore[arg-type]

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = classifier

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values)

    result = from_torch(
        Whole(),
        {"pixel_values": torch.randn(2, 3, 32, 32)},
        tmp_path / "one",
        task="image-classification",
        preprocessing=ImagePreprocessing(32, 32, mean=_MEAN, std=_STD),
        labels=("a", "b", "c"),
    )
    assert set(result.manifest.graphs) == {"model"}


def test_classification_without_labels_is_refused(tmp_path: Path) -> None:
    import torch

    with pytest.raises(UsageError, match="labels"):
        from_torch(
            _Backbone.build(),
            {"pixel_values": torch.randn(1, 3, 32, 32)},
            tmp_path / "x",
            task="image-classification",
            preprocessing=ImagePreprocessing(32, 32, mean=_MEAN, std=_STD),
        )
    assert not (tmp_path / "x").exists()
