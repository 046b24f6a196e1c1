"""SecAgg+ masks that are as strong as their seeds, and masked updates sent at the modulus' width.

**Masks.** Flower 1.42's ``pseudo_rand_gen`` (``flwr/common/secure_aggregation/secaggplus_utils.py``)
folds a mask's 32-byte seed into one 32-bit integer (the XOR of its words) and draws the mask from
numpy's ``RandomState`` (Mersenne Twister). The mask protecting a site's update then has 2**32
possible values: whoever sees one masked update and knows a little of what it should look like (a
sybil site in a 3-site round knows its own seeds, and the update's rough range is public) can try
every seed in minutes. :func:`mask_arrays` draws the same shapes from ChaCha20's keystream, keyed by
SHA-256 of the whole seed under a domain label (a pairwise key from Flower's ``generate_shared_key``
is 44 base64 characters, a private seed 32 random bytes; both are new in every round, so the
stream's all-zero nonce is never reused with one key). For a power-of-two range up to 2**32
(Genba's is 2**32) each value is the low bits of a 32-bit word, exactly uniform; for another
range, a 64-bit word reduced modulo the range (a bias below 2**-32).

**Width and record.** The masked update is a value modulo ``modulus_range`` (2**32), which Flower
sends as int64 arrays serialised into one bytes list of its ``secaggplus_configs`` ConfigRecord:
twice the bytes of the fp32 update, and slow to move (building the object id, tree and serialised
objects of a reply holding a 7.1 MB update took 607 ms as a ConfigRecord, 18 ms as an ArrayRecord,
a cost paid at every hop that serialises or checks it). :func:`narrow_masked` gives the site's
arrays as uint32 (every value fits), sent as the ArrayRecord :data:`MASKED_RECORD` (Flower chunks
it like any array), and :func:`widen_masked` gives the server's workflow its int64 blobs again, in
the ConfigRecord where it reads them, before it adds them, so the arithmetic is Flower's own.

Both sides must use the same masks, so :func:`use_genba_masks` installs them in Flower's SecAgg+
client mod and server workflow at once; Genba's FAB version (``genba/federation_fab``) changed
with them, so a site and a server of different mask schemes refuse each other's runs rather than
aggregate noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

#: Domain label of the ChaCha20 key derived from a SecAgg+ seed.
MASK_KEY_LABEL = b"genba secagg+ mask v1\x00"
#: The ArrayRecord a site's masked update travels in (arrays "0", "1", ... in Flower's order).
MASKED_RECORD = "secaggplus_masked"
#: The widest modulus a narrowed masked update holds.
NARROW_LIMIT = 2**32
_ZERO_NONCE = bytes(16)


def mask_arrays(seed: bytes, num_range: int, dimensions_list: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Uniform int64 masks in ``[0, num_range)`` of the given shapes, from ChaCha20 keyed by ``seed``.

    The drop-in for Flower's ``pseudo_rand_gen`` (same signature and dtype): one keystream covers
    all the shapes in order, so the same seed always gives the same masks.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    if not seed:
        raise ValueError("a SecAgg+ mask needs a non-empty seed")
    if num_range < 2:
        raise ValueError(f"mask range {num_range} is too small: it must be at least 2")
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in dimensions_list]
    key = hashlib.sha256(MASK_KEY_LABEL + bytes(seed)).digest()
    stream = Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), mode=None).encryptor()
    if num_range <= NARROW_LIMIT and num_range & (num_range - 1) == 0:  # 32-bit words, exact
        words = np.frombuffer(stream.update(bytes(4 * sum(sizes))), dtype="<u4")
        values = words & np.uint32(num_range - 1) if num_range < NARROW_LIMIT else words
    else:  # 64-bit words reduced: a bias below 2**-32 for any range up to 2**32
        values = np.frombuffer(stream.update(bytes(8 * sum(sizes))), dtype="<u8") % np.uint64(num_range)
    masks, start = [], 0
    for shape, size in zip(dimensions_list, sizes, strict=True):
        masks.append(values[start : start + size].astype(np.int64).reshape(shape))
        start += size
    return masks


def narrow_masked(blobs: Iterable[bytes]) -> list[np.ndarray]:
    """Masked arrays (Flower's ``ndarray_to_bytes``, int64 values in ``[0, modulus)``) as uint32 arrays.

    An array with a value outside ``[0, 2**32)`` is not a reduced masked update: ValueError."""
    from flwr.common import bytes_to_ndarray

    narrowed = []
    for blob in blobs:
        array = bytes_to_ndarray(blob)
        if array.dtype != np.uint32:
            reduced = array.dtype.kind in "iu" and (
                not array.size or (array.min() >= 0 and array.max() < NARROW_LIMIT)
            )
            if not reduced:
                raise ValueError("a masked update holds values outside [0, 2**32): it was not reduced")
            array = array.astype(np.uint32)
        narrowed.append(array)
    return narrowed


def widen_masked(arrays: Iterable[np.ndarray]) -> list[bytes]:
    """Narrowed masked arrays as the int64 blobs Flower's workflow adds (unsigned values of at most
    32 bits widen exactly); any other array is refused: ValueError."""
    from flwr.common import ndarray_to_bytes

    widened = []
    for array in arrays:
        if array.dtype != np.uint32:
            raise ValueError(f"a masked update must arrive as uint32 arrays, not {array.dtype}")
        widened.append(ndarray_to_bytes(array.astype(np.int64)))
    return widened


def use_genba_masks() -> None:
    """Make Flower's SecAgg+ client mod and server workflow draw their masks with :func:`mask_arrays`
    (this process; idempotent)."""
    import importlib

    # The packages re-export functions under their modules' names: take the modules themselves.
    secaggplus_mod = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
    secaggplus_workflow = importlib.import_module(
        "flwr.server.workflow.secure_aggregation.secaggplus_workflow"
    )
    for module in (secaggplus_mod, secaggplus_workflow):
        setattr(module, "pseudo_rand_gen", mask_arrays)  # noqa: B010  (a module's global, replaced)
