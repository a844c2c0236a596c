from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sources import Author, Enclosure, ParsedEntry
from store.identity import content_hash, entry_key, entry_keys, entry_uid

ENTRY = ParsedEntry(id="guid-1", link="https://x.example/a", title="Title", summary="<p>s</p>")


def test_the_key_is_the_guid_then_the_link_then_a_hash() -> None:
    assert entry_key(ENTRY) == "guid-1"
    assert entry_key(dataclasses.replace(ENTRY, id=None)) == "https://x.example/a"
    bare = dataclasses.replace(ENTRY, id=None, link=None)
    assert entry_key(bare).startswith("sha256:")
    assert entry_key(bare) == entry_key(dataclasses.replace(bare))
    assert entry_key(bare) != entry_key(dataclasses.replace(bare, title="Other"))


def test_keys_are_unique_within_a_document() -> None:
    twins = [
        ENTRY,
        dataclasses.replace(ENTRY, link="https://x.example/b"),
        dataclasses.replace(ENTRY, link="https://x.example/b"),
    ]
    keys = entry_keys(twins)
    assert keys == ["guid-1", "guid-1 https://x.example/b", "guid-1 https://x.example/b #2"]


def test_the_public_id_depends_on_source_and_key_only() -> None:
    assert entry_uid("a", "k") == entry_uid("a", "k")
    assert entry_uid("a", "k") != entry_uid("b", "k")
    assert len(entry_uid("a", "k")) == 32


def test_the_content_hash_sees_every_stored_field() -> None:
    base = content_hash(ENTRY)
    variants = [
        dataclasses.replace(ENTRY, title="T2"),
        dataclasses.replace(ENTRY, summary="<p>t</p>"),
        dataclasses.replace(ENTRY, content="<p>c</p>"),
        dataclasses.replace(ENTRY, link="https://x.example/b"),
        dataclasses.replace(ENTRY, authors=(Author("Ann"),)),
        dataclasses.replace(ENTRY, authors=(Author("Ann", "https://x.example/ann"),)),
        dataclasses.replace(ENTRY, categories=("ai",)),
        dataclasses.replace(ENTRY, enclosures=(Enclosure("https://x.example/a.mp3"),)),
    ]
    hashes = {content_hash(v) for v in variants}
    assert base not in hashes
    assert len(hashes) == len(variants)
    assert content_hash(dataclasses.replace(ENTRY)) == base


def test_content_hashes_and_public_ids_never_change() -> None:
    # Stored hashes and uids must stay valid across versions: a change here would mark every
    # stored entry as changed, or give it a new public id.
    entry = ParsedEntry(
        id="g",
        link="https://x.example/a",
        title='Café "q"',
        summary="<p>s</p>",
        published=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        authors=(Author("A"),),
        categories=("c",),
        enclosures=(Enclosure("https://x.example/a.mp3", "audio/mpeg", 10),),
        language="fr",
    )
    assert content_hash(entry) == (
        "851915b3ce54b7c3f4da798480a0a5111f8f33774a4a3518c8161c8f21ffdf2b"
    )
    assert entry_uid("s", "g") == "8579c2043b6d53fb9b934b2c332016c9"


def test_a_link_key_drops_the_fragment_the_canonical_link_keeps() -> None:
    """Keys were made before canonical links kept fragments that name a post: a guid-less
    entry keeps its key (and public id), and two posts on one page stay two entries."""
    first = ParsedEntry(id=None, link="http://scripting.com/2017/06/26.html#a080605", title="a")
    second = ParsedEntry(id=None, link="http://scripting.com/2017/06/26.html#a090102", title="b")
    assert entry_key(first) == "http://scripting.com/2017/06/26.html"
    keys = entry_keys([first, second])
    assert keys[0] == "http://scripting.com/2017/06/26.html"
    assert keys[1] != keys[0] and keys[1].endswith("#a090102")
    assert entry_key(ParsedEntry(id=None, link="https://x.example/a?ref=rss", title="c")).endswith(
        "ref=rss"
    )
