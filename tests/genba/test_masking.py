"""SecAgg+ masks drawn from the whole seed, and masked updates narrowed to the modulus' width."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from flwr.common import bytes_to_ndarray, ndarray_to_bytes
from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen

from genba.masking import mask_arrays, narrow_masked, use_genba_masks, widen_masked

SHAPES = [(384, 8), (8,), ()]
MODULUS = 2**32


def _same_fold(seed: bytes) -> bytes:
    """Another seed Flower's ``pseudo_rand_gen`` cannot tell apart: its 4-byte words swapped
    (Flower seeds its generator with the XOR of the words, which ignores their order)."""
    words = [seed[i : i + 4] for i in range(0, len(seed), 4)]
    return b"".join(words[1:] + words[:1])


def test_flowers_generator_collapses_distinct_seeds_that_genbas_keeps_apart() -> None:
    seed = os.urandom(32)
    other = _same_fold(seed)
    assert other != seed
    flower = [pseudo_rand_gen(s, MODULUS, SHAPES) for s in (seed, other)]
    assert all(np.array_equal(a, b) for a, b in zip(*flower, strict=True))  # the weakness is real
    genba = [mask_arrays(s, MODULUS, SHAPES) for s in (seed, other)]
    assert not np.array_equal(genba[0][0], genba[1][0])


def test_masks_are_deterministic_per_seed_with_flowers_shapes_and_dtype() -> None:
    seed = os.urandom(32)
    first, again = mask_arrays(seed, MODULUS, SHAPES), mask_arrays(seed, MODULUS, SHAPES)
    assert [m.shape for m in first] == SHAPES and all(m.dtype == np.int64 for m in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], mask_arrays(os.urandom(32), MODULUS, SHAPES)[0])


@pytest.mark.parametrize("modulus", [2**32, 2**20, 1000003])
def test_masks_are_uniform_over_the_range(modulus: int) -> None:
    from scipy.stats import chisquare

    (values,) = mask_arrays(os.urandom(44), modulus, [(200_000,)])
    assert values.min() >= 0 and values.max() < modulus
    counts = np.bincount((values * 16 // modulus).astype(np.int64), minlength=16)
    assert chisquare(counts).pvalue > 1e-4
    low_bits = np.bincount((values & 15).astype(np.int64), minlength=16)
    assert modulus % 16 or chisquare(low_bits).pvalue > 1e-4


def test_a_mask_needs_a_seed_and_a_range() -> None:
    with pytest.raises(ValueError, match="seed"):
        mask_arrays(b"", MODULUS, SHAPES)
    with pytest.raises(ValueError, match="range"):
        mask_arrays(b"seed", 1, SHAPES)


def test_narrowed_masked_updates_sum_to_what_flowers_int64_sum_gives() -> None:
    rng = np.random.default_rng(0)
    updates = [[rng.integers(0, MODULUS, size=s, dtype=np.int64) for s in SHAPES] for _ in range(3)]
    sent = [narrow_masked(ndarray_to_bytes(a) for a in update) for update in updates]
    assert all(array.dtype == np.uint32 for arrays in sent for array in arrays)
    assert len(ndarray_to_bytes(sent[0][0])) < 0.51 * len(ndarray_to_bytes(updates[0][0]))
    received = [[bytes_to_ndarray(b) for b in widen_masked(arrays)] for arrays in sent]
    for index in range(len(SHAPES)):
        expected = sum(update[index] for update in updates) % MODULUS
        got = sum(update[index] for update in received) % MODULUS
        assert got.dtype == np.int64 and np.array_equal(got, expected)


@pytest.mark.parametrize("bad", [np.array([-1, 3]), np.array([MODULUS, 0]), np.array([0.5, 1.0])])
def test_an_unreduced_masked_update_is_refused_not_truncated(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="not reduced"):
        narrow_masked([ndarray_to_bytes(bad)])


def test_the_server_widens_only_uint32_masked_arrays() -> None:
    with pytest.raises(ValueError, match="uint32"):
        widen_masked([np.array([1, 2], dtype=np.int64)])


def test_flowers_secaggplus_client_and_server_draw_genbas_masks() -> None:
    use_genba_masks()
    for name in (
        "flwr.client.mod.secure_aggregation.secaggplus_mod",
        "flwr.server.workflow.secure_aggregation.secaggplus_workflow",
    ):
        assert importlib.import_module(name).pseudo_rand_gen is mask_arrays
