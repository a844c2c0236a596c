"""MinHash signatures and the LSH keys a database table can index. Pure, vectorised.

A signature is ``num_perm`` 32-bit minimums, bit-for-bit datasketch's ``affine32`` MinHash
(seed 1, CRC-32 of each shingle; tests/store/test_stories.py pins the equality) computed for
all shingles and permutations (of a whole batch of entries: ``minhash_rows``) in one numpy
expression instead of through a MinHash object. The bands are cut from its first
``bands * rows`` values; band ``b``'s key is a signed 64-bit mix of (b, its rows' values):
two entries share a key when a whole band agrees, so a table of (key -> story id) rows finds
candidate stories with one indexed ``IN`` query. Term keys for event mode live in the same
key space under another salt.
"""

from __future__ import annotations

import zlib
from array import array
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

# The array typecode of an unsigned 32-bit int ("I" on every platform numpy supports).
_U32_CODE = next(code for code in "IL" if array(code).itemsize == 4)
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
    hashes = hash_array()
    hashes.extend(zlib.crc32(s.encode("utf-8", "surrogatepass")) for s in shingles)
    if not hashes:
        return b""
    return signature_bytes(minhash_rows(hashes, [len(hashes)], num_perm))[0]


def hash_array() -> array[int]:
    """An empty array of unsigned 32-bit ints, for shingle hashes (numpy reads it in place)."""
    return array(_U32_CODE)


def minhash_rows(
    hashes: array[int] | Sequence[int], counts: Sequence[int], num_perm: int, block: int = 8192
) -> U32:
    """The MinHash minimums of consecutive runs of shingle hashes, one row per run: row i
    of the first ``counts[i]`` hashes after the previous runs' (each run at least one hash).

    All runs at once: one (num_perm x hashes) permuted matrix, reduced by run, in blocks of
    ``block`` hashes so a long text does not make a large matrix; per hash and permutation
    it is datasketch's ``(a * fmix32(hash) + b) mod 2^32`` (uint32 arithmetic wraps).
    """
    sizes = np.asarray(counts, dtype=np.intp)
    mixed = _fmix32(np.asarray(hashes, dtype=np.uint32))
    if sizes.size and int(sizes.min()) < 1:
        raise ValueError("every run has at least one hash")
    if int(sizes.sum()) != mixed.size:
        raise ValueError(f"runs of {int(sizes.sum())} hashes in total, got {mixed.size}")
    a, b = _permutations(num_perm)
    a_column, b_column = a[:, np.newaxis], b[:, np.newaxis]
    starts = np.cumsum(sizes) - sizes
    minimums = np.full((num_perm, sizes.size), np.iinfo(np.uint32).max, dtype=np.uint32)
    for low in range(0, mixed.size, block):
        high = min(low + block, mixed.size)
        first = int(np.searchsorted(starts, low, "right")) - 1  # the run holding ``low``
        last = int(np.searchsorted(starts, high, "left"))  # runs starting before ``high``
        permuted = a_column * mixed[low:high]
        permuted += b_column
        # A run that began in an earlier block starts here at 0.
        cuts = np.maximum(starts[first:last], low) - low
        runs = minimums[:, first:last]
        np.minimum(runs, np.minimum.reduceat(permuted, cuts, axis=1), out=runs)
    return np.ascontiguousarray(minimums.T)


def signature_bytes(minimums: U32) -> list[bytes]:
    """Each row of :func:`minhash_rows` as a signature: little-endian uint32s."""
    data = minimums.astype("<u4", copy=False).tobytes()
    width = minimums.shape[1] * 4
    return [data[start : start + width] for start in range(0, len(data), width)]


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
    return band_key_rows(np.frombuffer(signature, "<u4")[np.newaxis, :], bands, rows)[0]


def band_key_rows(minimums: U32, bands: int, rows: int) -> list[tuple[int, ...]]:
    """``band_keys`` of each row of signature values (:func:`minhash_rows`), all at once."""
    width = bands * rows  # the signature's first values; the rest only sharpen the scores
    values = minimums[:, :width].astype(np.uint64).reshape(-1, bands, rows)
    folded = (values * _row_multipliers(bands, rows)).sum(axis=2, dtype=np.uint64)
    salted = folded ^ (np.arange(bands, dtype=np.uint64) << np.uint64(32))
    keys: list[list[int]] = _mix64(salted ^ np.uint64(_BAND_SALT)).view(np.int64).tolist()
    return list(map(tuple, keys))


def term_keys(terms: Iterable[str]) -> tuple[int, ...]:
    """A signed 64-bit key per term (CRC-32 and Adler-32 of it, mixed), in the terms' order."""
    data = [term.encode("utf-8", "surrogatepass") for term in terms]
    if not data:
        return ()
    crcs = np.array(list(map(zlib.crc32, data)), dtype=np.uint64)
    adlers = np.array(list(map(zlib.adler32, data)), dtype=np.uint64)
    words = crcs << np.uint64(32) | adlers
    mixed = _mix64(words ^ np.uint64(_TERM_SALT))
    return tuple(mixed.view(np.int64).tolist())


def term_key(term: str) -> int:
    return term_keys((term,))[0]
