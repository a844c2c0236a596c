"""MinHash signatures (datasketch) and the LSH keys a database table can index. Pure.

A signature is ``bands * rows`` 32-bit minimums. Band ``b``'s key is a signed 64-bit hash of
(b, its rows' values): two entries share a key when a whole band agrees, so a table of
(key -> story id) rows finds candidate stories with one indexed ``IN`` query. Term keys for
event mode use the same key space with another prefix.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import MinHash

# Fixed forever: changing either re-keys every stored story.
_SEED = 1
_SCHEME = "affine32"


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> Any:
    return MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME).permutations


def sign_shingles(shingles: Iterable[str], num_perm: int) -> bytes:
    """The MinHash signature of a set of shingles (little-endian uint32s); empty if no shingles.

    Bytes, so that a database keeps it in one column and comparing two costs no conversion.
    """
    encoded = [s.encode("utf-8", "surrogatepass") for s in shingles]
    if not encoded:
        return b""
    sketch = MinHash(
        num_perm=num_perm,
        seed=_SEED,
        hashfunc=zlib.crc32,
        permutations=_permutations(num_perm),
        scheme=_SCHEME,
    )
    sketch.update_batch(encoded)
    return bytes(sketch.hashvalues.astype("<u4").tobytes())


def estimate_jaccard(left: bytes, right: bytes) -> float:
    """Fraction of agreeing minimums: an unbiased estimate of the shingles' Jaccard index."""
    if not left or len(left) != len(right):
        return 0.0
    agree = np.count_nonzero(np.frombuffer(left, "<u4") == np.frombuffer(right, "<u4"))
    return float(agree) / (len(left) // 4)


def band_keys(signature: bytes, bands: int, rows: int) -> tuple[int, ...]:
    if not signature:
        return ()
    width = 4 * rows
    return tuple(
        _key(b"b" + struct.pack("<H", band) + signature[band * width : (band + 1) * width])
        for band in range(bands)
    )


def term_key(term: str) -> int:
    return _key(b"t" + term.encode("utf-8", "surrogatepass"))


def _key(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
