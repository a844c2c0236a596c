"""Which stored entry an upstream entry is, and whether it changed. Pure functions.

The key of an entry within its source:

1. the upstream id (Atom ``id``, RSS ``guid``, JSON Feed ``id``), exactly as given;
2. else its canonical link without its fragment (store.canonical: FeedBurner/feedproxy
   wrappers unwrapped, scheme and host lower-cased, default port, tracking parameters
   dropped, query sorted), so ``https://x.example/a?utm_source=rss`` and
   ``HTTPS://X.example:443/a#top`` are one entry;
3. else ``sha256:`` + a hash of its title and content.

A document that repeats a key (it happens) keeps the first occurrence's key; a later one is
told apart by its canonical link with the fragment that names a post
(``.../24.html#a010650``), then by its position in the document, so no entry is dropped.

Keys are stored, and the public id is derived from them: a change to how links are
canonicalised must not change the key of an entry already stored. That is why the key drops
the fragment even though the canonical link (used to group copies of one article) keeps one
that names a post, as keys did before canonical links kept any.

The public id (``uid``) is a UUID derived from (source id, key): the same entry always gets the
same id, whatever database it lives in. A content hash over everything we store decides
whether a known entry changed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sources.model import Author, ParsedEntry
from store.canonical import DEFAULT_FILTER, TrackingFilter, canonical_link

# Fixed forever: changing it would give every stored entry a new public id.
UID_NAMESPACE = uuid.UUID("4f1c7a52-9a3e-5d1b-8e0f-6b2d9c1e7a30")


def entry_key(entry: ParsedEntry, tracking: TrackingFilter = DEFAULT_FILTER) -> str:
    return _key(entry, None if entry.id else canonical_link(entry, tracking))


def _key(entry: ParsedEntry, link: str | None) -> str:
    if entry.id:
        return entry.id
    if link:
        return link.partition("#")[0] if link.startswith(("https://", "http://")) else link
    return "sha256:" + _sha256(entry.title or "", entry.content or entry.summary or "")


def entry_keys(
    entries: Sequence[ParsedEntry],
    tracking: TrackingFilter = DEFAULT_FILTER,
    links: Sequence[str | None] | None = None,
) -> list[str]:
    """Keys for a whole document, unique within it (see the module docstring). ``links``:
    the entries' canonical links, when the caller has them already."""
    if links is None:
        links = [canonical_link(entry, tracking) for entry in entries]
    seen: set[str] = set()
    keys = []
    for position, (entry, link) in enumerate(zip(entries, links, strict=True)):
        key = _key(entry, link)
        if key in seen and link:
            key = f"{key} {link}"
        if key in seen:
            key = f"{key} #{position}"
        seen.add(key)
        keys.append(key)
    return keys


def authors_data(authors: Sequence[Author]) -> list[str | dict[str, str]]:
    """Authors as stored (a JSON column) and hashed: a name alone as a string, as before
    authors had URLs, so those entries keep their content hash; else name and URL."""
    return [a.name if a.url is None else {"name": a.name, "url": a.url} for a in authors]


def entry_uid(source_id: str, key: str) -> str:
    return uuid.uuid5(UID_NAMESPACE, f"{source_id}\x00{key}").hex


def content_hash(entry: ParsedEntry) -> str:
    """Changes when anything we store of the entry changes, and only then."""
    return _sha256(
        _JSON.encode(
            [
                entry.link,
                entry.title,
                entry.summary,
                entry.content,
                _iso(entry.published),
                _iso(entry.updated),
                authors_data(entry.authors),
                list(entry.categories),
                [[e.url, e.type, e.length] for e in entry.enclosures],
                # only when known, so that hashes stored before languages were kept still hold
                *([entry.language] if entry.language else []),
            ]
        )
    )


# json.dumps(..., ensure_ascii=False, separators=(",", ":")) without a new encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()
