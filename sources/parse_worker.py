"""A parsing worker process: ``python -m sources.parse_worker`` (started by sources.parsing).

Reads requests from stdin and writes replies to stdout, each an 8-byte big-endian length and
a pickle: a request is (content, url, content_type), a reply a ParsedFeed or (ErrorKind,
message). Exits at the end of stdin.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from typing import BinaryIO

from sources.errors import ErrorKind, ParseError
from sources.model import ParsedFeed
from sources.parse import parse_document

_HEADER = 8


def parse_one(
    content: bytes, url: str, content_type: str | None
) -> ParsedFeed | tuple[ErrorKind, str]:
    """parse_document, with every failure as a value: our exceptions take keyword arguments,
    which pickling would drop."""
    try:
        return parse_document(content, url, content_type)
    except ParseError as error:
        return error.kind, error.message
    except (RecursionError, MemoryError) as exc:
        return ErrorKind.TOO_COMPLEX, f"the document is too complex to parse ({exc!r})"
    except Exception:  # a bug: the parent raises it with this traceback
        return ErrorKind.INTERNAL, traceback.format_exc()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    while len(header := requests.read(_HEADER)) == _HEADER:
        content, url, content_type = pickle.loads(requests.read(int.from_bytes(header, "big")))
        reply = pickle.dumps(parse_one(content, url, content_type), pickle.HIGHEST_PROTOCOL)
        replies.write(len(reply).to_bytes(_HEADER, "big") + reply)
        replies.flush()


if __name__ == "__main__":
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the channel
    serve(sys.stdin.buffer, channel)
