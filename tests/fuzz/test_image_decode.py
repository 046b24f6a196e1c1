"""Fuzz decoding pictures (``genba.images`` and the image preprocessing in ``genba.runtime``).

Valid pictures in every format and mode a site meets, with changed bytes, PNG headers rewritten
to other sizes (checksums fixed, so the decoder believes them), random bytes; and the bundle's
image preprocessing settings changed in type and value.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import genba_fuzz_samples as samples
import genba_fuzzing as fuzzing
import pytest
from hypothesis import strategies as st

from genba.errors import BundleFormatError, InputFileError
from genba.images import open_image, rgb_image
from genba.runtime.preprocess import preprocessor_for

SPEC = {
    "kind": "image", "height": 8, "width": 8, "rescale_factor": 1 / 255, "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25], "resample": 2, "graph_inputs": ["pixel_values"],
}  # fmt: skip
SIZES = (0, 1, 15000, 6000, 2**31 - 1, 2**32 - 1, 40_000_001, 65535)


def resized_png(png: bytes, width: int, height: int) -> bytes:
    """``png`` whose header says ``width`` x ``height``, its checksum recomputed."""
    header = bytearray(png[16:29])
    header[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)))
    return png[:16] + bytes(header) + crc + png[33:]


@dataclass(frozen=True)
class ImageCase:
    data: bytes
    spec: Any


def _pictures() -> st.SearchStrategy[bytes]:
    valid = st.sampled_from(samples.PICTURES).map(lambda kind: samples.picture(*kind))
    png = st.sampled_from([k for k in samples.PICTURES if k[0] == "PNG"]).map(
        lambda kind: samples.picture(*kind)
    )
    return st.one_of(
        valid,
        valid.flatmap(fuzzing.mutated_bytes),
        st.builds(resized_png, png, st.sampled_from(SIZES), st.sampled_from(SIZES)),
        st.builds(resized_png, png, st.sampled_from(SIZES), st.sampled_from(SIZES)).flatmap(
            fuzzing.mutated_bytes
        ),
        png.flatmap(samples.mutated_png),
        st.binary(max_size=128),
    )


def _specs() -> st.SearchStrategy[Any]:
    return st.one_of(st.just(SPEC), fuzzing.mutated_json(SPEC))


def _preprocess(case: ImageCase) -> Any:
    with fuzzing.sandbox() as root:
        return preprocessor_for(root, case.spec).encode([case.data])


def check(case: ImageCase) -> None:
    fuzzing.expect_typed(lambda: open_image(case.data, "the image"), "open_image")
    fuzzing.expect_typed(lambda: rgb_image(case.data), "rgb_image")
    if isinstance(case.spec, dict):
        fuzzing.expect_typed(lambda: _preprocess(case), "image preprocessing")


TARGET = fuzzing.Target("image_decode", st.builds(ImageCase, _pictures(), _specs()), check)


def test_decoding_a_picture_answers_every_input_with_a_typed_error_or_pixels() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing

PNG = samples.picture("PNG", "RGB")


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({k: v for k, v in SPEC.items() if k != "mean"}, id="no mean (was KeyError)"),
        pytest.param({**SPEC, "height": None}, id="height null (was TypeError)"),
        pytest.param({**SPEC, "rescale_factor": [1]}, id="rescale factor a list (was TypeError)"),
        pytest.param({**SPEC, "std": [0.25, 0.25]}, id="two std values (was ValueError from reshape)"),
        pytest.param({**SPEC, "mean": ["a", 0.5, 0.5]}, id="mean not numbers (was ValueError)"),
        pytest.param({**SPEC, "resample": 99}, id="unknown resampling (was ValueError at the first picture)"),
        pytest.param({**SPEC, "width": 0}, id="zero width (was ValueError at the first picture)"),
        pytest.param({**SPEC, "height": 2**64}, id="height 2**64 (was OverflowError in Pillow's resize)"),
        pytest.param({**SPEC, "graph_inputs": []}, id="no graph input (was IndexError at the first picture)"),
    ],
)
def test_malformed_image_preprocessing_settings_are_refused_as_a_bundle_problem(spec: dict[str, Any]) -> None:
    check(ImageCase(PNG, spec))
    with (
        fuzzing.sandbox() as root,
        pytest.raises(BundleFormatError, match="image preprocessing settings are malformed"),
    ):
        preprocessor_for(root, spec)


@pytest.mark.parametrize(("kind", "mode"), samples.PICTURES)
def test_every_unchanged_picture_decodes_and_preprocesses(kind: str, mode: str) -> None:
    """The fuzzing starts from pictures that decode: the property is not met by refusing all."""
    data = samples.picture(kind, mode)
    assert rgb_image(data).mode == "RGB"
    with fuzzing.sandbox() as root:
        assert preprocessor_for(root, SPEC).encode([data])["pixel_values"].shape == (1, 3, 8, 8)


def test_a_dds_picture_with_unknown_pixel_format_flags_is_refused_as_undecodable() -> None:
    """Was NotImplementedError ('Unknown pixel format flags 0') from Pillow's DDS plugin."""
    data = bytearray(samples.picture("DDS", "RGBA"))
    data[80:84] = bytes(4)  # the pixel format's flags (header offset 76 + 4)
    check(ImageCase(bytes(data), SPEC))
    with pytest.raises(InputFileError, match="the image cannot be decoded"):
        open_image(bytes(data), "the image")
