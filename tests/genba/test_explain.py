"""Occlusion explanations on the ONNX model alone: a planted decisive word ranks first."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.graphs import HeadWeights
from export.head_swap import read_head, write_head_swap
from genba import keys
from genba.bundle import verify_directory
from genba.errors import UsageError
from genba.runtime.config import RuntimeConfig
from genba.runtime.explain import MAX_VARIANTS, MAX_WORDS, ExplanationTooLongError, explain
from genba.runtime.model import BundleModel

PLANTED = "oil"
FILLER = ("housing", "surface", "bracket", "screw", "part", "good", "left", "right", "line", "shift",
          "rim", "flange", "gasket", "clip", "on", "the", "a", "of", "at", "near")  # fmt: skip


def _texts(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 9))]
        if i % 2:
            words.insert(rng.randrange(len(words) + 1), PLANTED)
        rows.append((" ".join(words), "dent" if i % 2 else "ok"))
    return rows


@pytest.fixture(scope="module")
def planted_model(
    bert_bundle: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> BundleModel:
    """The tiny BERT bundle with a head trained so that the word 'oil' decides 'dent' against 'ok'."""
    from sklearn.linear_model import LogisticRegression

    parent = verify_directory(bert_bundle, None)
    serving = BundleModel(parent, RuntimeConfig(provider="cpu"))
    rows = _texts(400, seed=0)
    embeddings = serving.run([text for text, _ in rows])["embedding"]
    labels = list(serving.labels)
    fitted = LogisticRegression(C=100.0, max_iter=5000).fit(embeddings, [labels.index(y) for _, y in rows])
    head = read_head(parent)
    weight, bias = np.full_like(head.weight, 0.0), np.full_like(head.bias, -20.0)  # 'scratch' never wins
    for row, cls in enumerate(fitted.classes_):
        weight[cls], bias[cls] = (
            fitted.coef_[0] * (1 if row else -1) / 2,
            fitted.intercept_[0] * (1 if row else -1) / 2,
        )
    out = tmp_path_factory.mktemp("planted") / "bundle"
    write_head_swap(parent, HeadWeights(weight, bias), out, keys.load_private_key(keypair[0]),
                    source={"kind": "test"}, report_key="test", report={})  # fmt: skip
    return BundleModel(verify_directory(out, None), RuntimeConfig(provider="cpu"))


def test_the_planted_decisive_word_ranks_first(planted_model: BundleModel) -> None:
    held_out = _texts(40, seed=1)
    answers = [p.label for p in planted_model.predict([text for text, _ in held_out])]
    assert (
        np.mean([a == y for a, (_, y) in zip(answers, held_out, strict=True)]) >= 0.9
    )  # it learned the rule
    explained = 0
    for (text, label), answer in zip(held_out, answers, strict=True):
        if label == "dent" and answer == "dent":
            explanation = explain(planted_model, text, "text")
            assert explanation.label == "dent" and explanation.ranked_words()[0][0] == PLANTED, explanation
            assert [w for w, _ in explanation.words] == text.split()  # in the input's order
            explained += 1
    assert explained >= 15
    document = explanation.to_json()
    assert document["method"].startswith("occlusion") and document["words"][0].keys() == {"text", "weight"}


def test_a_long_report_is_explained_by_spans_in_a_bounded_number_of_runs(
    planted_model: BundleModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    words = [rng.choice(FILLER) for _ in range(MAX_WORDS - 1)]
    words.insert(70, PLANTED)
    ran: list[int] = []
    real = planted_model.predict_arrays

    def counted(items: Any) -> Any:
        ran.append(len(items))
        return real(items)

    monkeypatch.setattr(planted_model, "predict_arrays", counted)
    explanation = explain(planted_model, " ".join(words), "text")
    assert ran == [MAX_VARIANTS + 1]  # the report and one variant per span, in one batch
    assert explanation.label == "dent"
    assert explanation.method == "occlusion (leave out spans of up to 4 words)"
    assert [w for w, _ in explanation.words] == words
    weights = [weight for _, weight in explanation.words]
    top = max(weights)
    assert weights[70] == top  # the planted word's span explains the answer
    assert sum(weight == top for weight in weights) <= 4  # and only that span


def test_an_input_too_long_or_empty_is_refused_with_one_line(planted_model: BundleModel) -> None:
    with pytest.raises(ExplanationTooLongError, match=f"at most {MAX_WORDS}: explain a shorter excerpt"):
        explain(planted_model, " ".join(["part"] * (MAX_WORDS + 1)), "text")
    with pytest.raises(UsageError, match="nothing to explain"):
        explain(planted_model, "   ", "text")


def test_an_image_gets_an_occlusion_heat_map(
    tiny_vit: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    from PIL import Image

    from export import ExportConfig, export_model

    bundle = export_model(
        ExportConfig(model_dir=tiny_vit, task="image-classification", out=tmp_path / "vit", precision="fp32",
                     signing_key=keypair[0])
    ).bundle  # fmt: skip
    model = BundleModel(verify_directory(bundle, None), RuntimeConfig(provider="cpu"))
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[8:24, 40:56] = 255  # a bright patch on black
    explanation = explain(model, Image.fromarray(pixels), "image")
    heatmap = np.array(explanation.heatmap)
    assert heatmap.shape == (8, 8) and np.isfinite(heatmap).all() and explanation.label in model.labels
    assert np.abs(heatmap).max() > 0  # occluding some patch changes the answer's probability


def test_a_photo_of_many_megapixels_is_explained_at_the_models_size_with_the_answer_it_was_served(
    vit_bundle: Path,
) -> None:
    """64 occluded copies of a 12 MP photo would be 2.3 GB; at the model's size they are kilobytes."""
    from PIL import Image

    model = BundleModel(verify_directory(vit_bundle, None), RuntimeConfig(provider="cpu"))
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    probabilities, _, _ = model.predict_arrays([photo])
    before = _resident_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    explanation = explain(model, photo, "image")
    grew = _resident_mib("VmHWM") - before
    assert grew < 200, f"resident memory grew by {grew:.0f} MiB while explaining"
    served = int(np.argmax(probabilities[0]))
    assert explanation.label == model.labels[served]
    assert explanation.score == pytest.approx(float(probabilities[0][served]), abs=1e-6)
    assert np.array(explanation.heatmap).shape == (8, 8)


def _resident_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")
