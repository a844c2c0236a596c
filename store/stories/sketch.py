"""MinHash signatures and the LSH keys a database table can index. Pure, vectorised.

A signature is ``bands * rows`` 32-bit minimums, bit-for-bit datasketch's ``affine32`` MinHash
(seed 1, CRC-32 of each shingle; tests/store/test_stories.py pins the equality) computed for
all shingles and permutations in one numpy expression instead of through a MinHash object.
Band ``b``'s key is a signed 64-bit mix of (b, its rows' values): two entries share a key when
a whole band agrees, so a table of (key -> story id) rows finds candidate stories with one
indexed ``IN`` query. Term keys for event mode live in the same key space under another salt.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from datasketch import MinHash

# Fixed forever: changing any of these re-keys every stored story.
_SEED = 1
_SCHEME = "affine32"
_BAND_SALT = 0x62616E64  # "band"
_TERM_SALT = 0x7465726D  # "term"

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[U32, U32]:
    """datasketch's (a, b) parameters for ``num_perm`` affine32 permutations (a is odd)."""
    a, b = MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


@lru_cache(maxsize=8)
def _row_multipliers(bands: int, rows: int) -> U64:
    """Odd 64-bit multipliers, one per (band, row), that fold a band's rows into one word."""
    generator = np.random.default_rng(_SEED)
    values = generator.integers(0, 1 << 63, size=(bands, rows), dtype=np.uint64)
    return values * np.uint64(2) + np.uint64(1)


def _fmix32(values: U32) -> U32:
    """MurmurHash3's 32-bit finaliser, as datasketch pre-mixes each input hash."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def _mix64(values: U64) -> U64:
    """splitmix64's finaliser: an avalanching bijection on 64-bit words."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def sign_shingles(shingles: Iterable[str], num_perm: int) -> bytes:
    """The MinHash signature of a set of shingles (little-endian uint32s); empty if no shingles.

    Bytes, so that a database keeps it in one column and comparing two costs no conversion.
    """
    hashes = [zlib.crc32(s.encode("utf-8", "surrogatepass")) for s in shingles]
    if not hashes:
        return b""
    a, b = _permutations(num_perm)
    mixed = _fmix32(np.array(hashes, dtype=np.uint32))
    permuted = mixed[:, np.newaxis] * a + b  # uint32 arithmetic wraps: mod 2^32
    return bytes(permuted.min(axis=0).astype("<u4").tobytes())


def estimate_jaccard(left: bytes, right: bytes) -> float:
    """Fraction of agreeing minimums: an unbiased estimate of the shingles' Jaccard index."""
    if not left or len(left) != len(right):
        return 0.0
    agree = np.count_nonzero(np.frombuffer(left, "<u4") == np.frombuffer(right, "<u4"))
    return float(agree) / (len(left) // 4)


def estimate_jaccards(signature: bytes, others: Sequence[bytes]) -> list[float]:
    """``estimate_jaccard(signature, other)`` for each of ``others``, in one comparison."""
    if not signature:
        return [0.0] * len(others)
    width = len(signature)
    same = [i for i, other in enumerate(others) if len(other) == width]
    scores = [0.0] * len(others)
    if same:
        stacked = np.frombuffer(b"".join(others[i] for i in same), "<u4").reshape(len(same), -1)
        agree = np.count_nonzero(stacked == np.frombuffer(signature, "<u4"), axis=1)
        for i, count in zip(same, (agree / (width // 4)).tolist(), strict=True):
            scores[i] = count
    return scores


def band_keys(signature: bytes, bands: int, rows: int) -> tuple[int, ...]:
    if not signature:
        return ()
    width = bands * rows  # the signature's first values; the rest only sharpen the scores
    values = np.frombuffer(signature, "<u4", count=width).astype(np.uint64).reshape(bands, rows)
    folded = (values * _row_multipliers(bands, rows)).sum(axis=1, dtype=np.uint64)
    salted = folded ^ (np.arange(bands, dtype=np.uint64) << np.uint64(32))
    return tuple(_mix64(salted ^ np.uint64(_BAND_SALT)).view(np.int64).tolist())


def term_keys(terms: Iterable[str]) -> tuple[int, ...]:
    """A signed 64-bit key per term (CRC-32 and Adler-32 of it, mixed), in the terms' order."""
    words = []
    for term in terms:
        data = term.encode("utf-8", "surrogatepass")
        words.append(zlib.crc32(data) << 32 | zlib.adler32(data))
    if not words:
        return ()
    mixed = _mix64(np.array(words, dtype=np.uint64) ^ np.uint64(_TERM_SALT))
    return tuple(mixed.view(np.int64).tolist())


def term_key(term: str) -> int:
    return term_keys((term,))[0]
