"""Layouts of the story_keys table, raw driver only: what 20 key rows an entry cost.

    python bench/story_keys_layout.py                # SQLite layouts, 100,000 entries
    python bench/story_keys_layout.py --postgres     # also PostgreSQL's ways of inserting

Each document of 50 entries (one transaction) looks its keys up on the 7 days around it (or
the week-sized buckets that cover them) and inserts 20 rows an entry (random 64-bit keys,
each entry its own story), days advancing as in bench/story_ingest.py. SQLite: the table as
migration 0006 made it (string story, rowid table, `(bucket, story)` index) against WITHOUT
ROWID, the story as two 64-bit integers (migration 0008), without the index, and week-sized
buckets. PostgreSQL:
`INSERT ... SELECT FROM unnest` with and without `ON CONFLICT DO NOTHING` against binary
`COPY`, with and without the index. Prints µs per entry (look-up included on SQLite) and the
file size; the first layout is the baseline of the run.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
import uuid

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BATCH, KEYS = 50, 20
_STRING = "bucket INTEGER, key BIGINT, story_id VARCHAR(64), PRIMARY KEY (bucket, key, story_id)"
_INTS = "bucket INTEGER, key BIGINT, hi BIGINT, lo BIGINT, PRIMARY KEY (bucket, key, hi, lo)"
SQLITE_LAYOUTS = {
    "0006: string story, rowid table, index": (_STRING, "", "bucket, story_id", 1),
    "WITHOUT ROWID": (_STRING, " WITHOUT ROWID", "bucket, story_id", 1),
    "WITHOUT ROWID, no index": (_STRING, " WITHOUT ROWID", "", 1),
    "0008: integer halves, WITHOUT ROWID, index": (_INTS, " WITHOUT ROWID", "bucket, hi, lo", 1),
    "integer halves, no index": (_INTS, " WITHOUT ROWID", "", 1),
    "integer halves, week buckets": (_INTS, " WITHOUT ROWID", "bucket, hi, lo", 7),
}


def documents(entries: int) -> list[list[tuple[int, int, str, int, int]]]:
    rng = random.Random(1)
    made = []
    for number in range(entries // BATCH):
        day = 20_000 + number * 100 // (entries // BATCH)  # 100 days
        rows = []
        for _ in range(BATCH):
            story = uuid.UUID(int=rng.getrandbits(128)).hex
            hi, lo = (int(story[:16], 16) >> 1, int(story[16:], 16) >> 1)
            rows.extend((day, rng.getrandbits(63), story, hi, lo) for _ in range(KEYS))
        made.append(sorted(rows))
    return made


def sqlite_layouts(docs: list[list[tuple[int, int, str, int, int]]], entries: int) -> None:
    base = None
    for name, (columns, rowid, index, width) in SQLITE_LAYOUTS.items():
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "keys.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"CREATE TABLE k ({columns}){rowid}")
        if index:
            db.execute(f"CREATE INDEX k_story ON k ({index})")
        ints = "hi BIGINT" in columns
        started = time.perf_counter()
        for rows in docs:
            data = [(b // width, k, *((h, lo) if ints else (s,))) for b, k, s, h, lo in rows]
            db.execute("BEGIN IMMEDIATE")
            first, last = (rows[0][0] - 3) // width, (rows[0][0] + 3) // width
            days = ", ".join(str(d) for d in range(first, last + 1))
            keys = ", ".join(str(row[1]) for row in rows)
            db.execute(f"SELECT * FROM k WHERE bucket IN ({days}) AND key IN ({keys})").fetchall()
            marks = ", ".join("?" * len(data[0]))
            db.executemany(f"INSERT INTO k VALUES ({marks}) ON CONFLICT DO NOTHING", data)
            db.execute("COMMIT")
        per = (time.perf_counter() - started) * 1e6 / entries
        base = base or per
        size = os.path.getsize(path) / 1e6
        print(f"  {name:46s} {per:7.1f} µs/entry  ratio {per / base:.2f}  {size:5.0f} MB")
        db.close()


def postgres_ways(docs: list[list[tuple[int, int, str, int, int]]], entries: int) -> None:
    import psycopg

    conn = psycopg.connect(POSTGRES)
    unnest = (
        "INSERT INTO fm_keys SELECT * FROM unnest(%s::int[], %s::int8[], %s::int8[], %s::int8[])"
    )
    base = None
    for name in (
        "unnest, ON CONFLICT",
        "unnest",
        "COPY",
        "unnest, ON CONFLICT, no index",
        "COPY, no index",
    ):
        conn.execute("DROP TABLE IF EXISTS fm_keys")
        conn.execute(f"CREATE TABLE fm_keys ({_INTS})")
        if "no index" not in name:
            conn.execute("CREATE INDEX fm_keys_story ON fm_keys (bucket, hi, lo)")
        conn.commit()
        started = time.perf_counter()
        for rows in docs:
            data = [(b, k, h, lo) for b, k, _, h, lo in rows]
            with conn.cursor() as cursor:
                if name.startswith("COPY"):
                    with cursor.copy("COPY fm_keys FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(["int4", "int8", "int8", "int8"])
                        for row in data:
                            copy.write_row(row)
                else:
                    conflict = " ON CONFLICT DO NOTHING" if "CONFLICT" in name else ""
                    cursor.execute(
                        unnest + conflict, tuple(list(c) for c in zip(*data, strict=True))
                    )
            conn.commit()
        per = (time.perf_counter() - started) * 1e6 / entries
        base = base or per
        print(f"  {name:46s} {per:7.1f} µs/entry  ratio {per / base:.2f}")
    conn.execute("DROP TABLE IF EXISTS fm_keys")
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    docs = documents(args.entries)
    print(f"SQLite, {args.entries} entries x {KEYS} key rows, look-up and insert a document:")
    sqlite_layouts(docs, args.entries)
    if args.postgres:
        print(f"PostgreSQL, {min(args.entries, 20_000)} entries, insert only:")
        postgres_ways(docs[: min(args.entries, 20_000) // BATCH], min(args.entries, 20_000))


if __name__ == "__main__":
    main()
