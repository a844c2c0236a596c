"""Content decoding (gzip, deflate, brotli, and any stack of them) with bounded output.

httpx's decoders turn each received chunk into all the bytes it expands to at once, so a few
kilobytes of brotli or a ``Content-Encoding: gzip, gzip`` body can become gigabytes in one
call before any size check runs. Here every decoder hands its output on in pieces of about
``STEP`` bytes (zlib: at most; brotli: its output buffer stops growing past it), and the next
layer (and the caller's size count) sees each piece before the next one is made: memory stays
near ``STEP`` times the number of layers plus what the caller keeps.

    decoder = BodyDecoder.for_encodings(headers.get("content-encoding"))
    for piece in decoder.decode(raw_chunk): ...      # each piece about STEP bytes
    for piece in decoder.finish(): ...               # at the end of the body
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import brotli

STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate, br"


class DecodeError(Exception):
    """The body is not valid in the encoding its headers name. Never leaves sources/."""


class _Layer(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip (``wbits`` 31) or deflate: zlib-wrapped, or raw as some servers send it."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._first = True

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._drain(data)
        except zlib.error as exc:
            if not (self._first and not self._gzip):
                raise DecodeError(f"invalid {self._name} data: {exc}") from exc
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
            self._first = False
            yield from self.decode(data)

    def _drain(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            piece = self._inflate.decompress(pending, STEP)
            self._first = self._first and not piece
            if piece:
                yield piece
            pending = self._inflate.unconsumed_tail
            if not pending and len(piece) < STEP:
                return

    def finish(self) -> Iterator[bytes]:
        try:
            yield from self._drain(b"")
        except zlib.error as exc:
            raise DecodeError(f"invalid {self._name} data: {exc}") from exc

    @property
    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        try:
            piece = self._decompressor.process(data, output_buffer_limit=STEP)
            # Output past the limit waits inside the decompressor, even when it says it can
            # take more input: drain it before the next input.
            while piece or not self._decompressor.can_accept_more_data():
                yield piece
                piece = self._decompressor.process(b"", output_buffer_limit=STEP)
        except brotli.error as exc:
            raise DecodeError(f"invalid brotli data: {exc}") from exc

    def finish(self) -> Iterator[bytes]:
        return iter(())


_LAYERS: dict[str, Callable[[], _Layer]] = {
    "gzip": lambda: _Zlib(True),
    "x-gzip": lambda: _Zlib(True),
    "deflate": lambda: _Zlib(False),
    "br": _Brotli,
}


class BodyDecoder:
    """The layers named by a Content-Encoding header, undone last-applied first. Codings we
    do not know (and ``identity``) pass the bytes through, as httpx does."""

    def __init__(self, layers: Iterable[_Layer]) -> None:
        self._layers = list(layers)

    @classmethod
    def for_encodings(cls, header: str | None) -> BodyDecoder:
        names = [name.strip().lower() for name in (header or "").split(",")]
        return cls(reversed([_LAYERS[name]() for name in names if name in _LAYERS]))

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, [data])

    def finish(self) -> Iterator[bytes]:
        for index, layer in enumerate(self._layers):
            yield from self._through(index + 1, layer.finish())

    def _through(self, start: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Each piece through the layers from ``start`` on, one bounded piece at a time; a
        layer's end-of-body output is taken only in :meth:`finish`."""
        if start == len(self._layers):
            yield from (piece for piece in pieces if piece)
            return
        layer = self._layers[start]
        for piece in pieces:
            yield from self._through(start + 1, layer.decode(piece))
