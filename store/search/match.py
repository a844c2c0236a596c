"""Reading the full-text index (store.search.index): the sort keys of a query's matches,
newest first, below a cursor.

    SQLite      one FTS5 MATCH, in ascending rowid (= newest-first) order
    PostgreSQL  walk the newest rows while that is cheaper, else the GIN index (_postgres_keys)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Text, bindparam, text
from sqlalchemy.dialects import postgresql

from store.search.index import TABLE, fts_rowid, source_token
from store.search.text import ROW_ID_MASK


def matching_keys(
    conn: Connection,
    compiled: str,
    *,
    source_ids: Sequence[str] | None,
    lower: int | None,
    upper: int | None,
    limit: int,
) -> list[int]:
    """Sort keys of the entries matching ``compiled`` (store.search.compile, for this
    database), newest first, ``lower <= key < upper``, at most ``limit``."""
    if source_ids is not None and not source_ids:
        return []
    if conn.dialect.name == "postgresql":
        return _postgres_keys(conn, compiled, source_ids, lower, upper, limit)
    params: dict[str, Any] = {"query": compiled, "limit": limit}
    if source_ids is not None:
        tokens = " OR ".join(f'"{source_token(s)}"' for s in source_ids)
        params["query"] = f"({compiled}) AND {{sid}} : ({tokens})"
    # The rowid is the key's complement: newest first is ascending rowids, FTS5's quicker way.
    where = [f"{TABLE} MATCH :query"]
    if lower is not None:
        where.append("rowid <= :lower")
        params["lower"] = fts_rowid(lower)
    if upper is not None:
        where.append("rowid > :upper")
        params["upper"] = fts_rowid(upper)
    statement = f"SELECT rowid FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY rowid"
    return [fts_rowid(r) for r in conn.execute(text(statement + " LIMIT :limit"), params).scalars()]


# PostgreSQL: the first look at the newest rows, and the most rows checked one by one before
# the matches are taken from the GIN index instead (see _postgres_keys).
RECENT_WINDOW = 1_000
WALK_LIMIT = 20_000


def _postgres_keys(
    conn: Connection,
    compiled: str,
    source_ids: Sequence[str] | None,
    lower: int | None,
    upper: int | None,
    limit: int,
) -> list[int]:
    """The planner cannot choose well between the two ways to answer (it knows how common a
    common word is, not how rare a rare one is), so this does, as it goes:

    - walk the rows newest first (the sort_key B-tree), checking each one's document: cheap
      per page when the query matches often, dear when it matches rarely;
    - read every match from the GIN index and keep the newest: cheap when the query matches
      rarely, dear when often.

    It walks RECENT_WINDOW rows, estimates from what it found how many more rows the page
    needs, walks those if that keeps the walk under WALK_LIMIT rows, and otherwise takes the
    rest of the page from the GIN index, below the last row walked.
    """
    params: dict[str, Any] = {"query": compiled}
    scope = []
    if lower is not None:
        scope.append("sort_key >= :lower")
        params["lower"] = lower
    if source_ids is not None:
        scope.append("source_id = ANY(:ids)")
        params["ids"] = list(source_ids)
    found: list[int] = []
    below, window, walked = upper, RECENT_WINDOW, 0
    while True:
        keys, below = _walk(conn, scope, params, below, window, limit - len(found))
        found += keys
        walked += window
        if len(found) == limit or below is None:
            return found
        needed = (limit - len(found)) * walked / len(found) if found else math.inf
        if walked + needed > WALK_LIMIT:
            return found + _from_gin(conn, scope, params, below, limit - len(found))
        window = max(RECENT_WINDOW, math.ceil(needed * 1.5))


def _walk(
    conn: Connection,
    scope: list[str],
    params: dict[str, Any],
    below: int | None,
    window: int,
    limit: int,
) -> tuple[list[int], int | None]:
    """The matches among the newest ``window`` rows below ``below`` (at most ``limit``), and
    the last of those rows' key, None when there were no more rows than that."""
    where = " AND ".join([*scope, *(["sort_key < :below"] if below is not None else [])])
    rows = (
        f"SELECT sort_key, document FROM {TABLE} WHERE {where or 'TRUE'} "
        "ORDER BY sort_key DESC LIMIT :window"
    )
    values = params | {"below": below, "window": window, "limit": limit}
    keys = _run(
        conn,
        f"SELECT sort_key FROM ({rows}) recent WHERE document @@ CAST(:query AS tsquery) "
        "ORDER BY sort_key DESC LIMIT :limit",
        values,
    )
    if len(keys) == limit:
        return keys, keys[-1]
    last = _run(
        conn,
        f"SELECT sort_key FROM {TABLE} WHERE {where or 'TRUE'} ORDER BY sort_key DESC "
        "OFFSET :window - 1 LIMIT 1",
        values,
    )
    return keys, (last[0] if last else None)


def _from_gin(
    conn: Connection, scope: list[str], params: dict[str, Any], below: int, limit: int
) -> list[int]:
    """The newest ``limit`` matches below ``below``, from a bitmap of the GIN index's. The
    bounds on the key are written so that no index can serve them (``sort_key + 0``): they
    cover most of the table, and a bitmap of them from the B-tree would cost more than the
    GIN's own bitmap saves."""
    bounds = [c.replace("sort_key", "sort_key + 0") for c in scope]
    where = " AND ".join([*bounds, "sort_key + 0 < :below", "document @@ CAST(:query AS tsquery)"])
    conn.execute(text("SET LOCAL enable_seqscan = off"))  # the GIN index, never the heap
    conn.execute(text("SET LOCAL work_mem = '64MB'"))  # an exact bitmap: no rechecks
    keys = _run(
        conn,
        f"SELECT sort_key FROM {TABLE} WHERE {where} ORDER BY sort_key + 0 DESC LIMIT :limit",
        params | {"below": below, "limit": limit},
    )
    conn.execute(text("RESET enable_seqscan"))
    conn.execute(text("RESET work_mem"))
    return keys


def _run(conn: Connection, statement: str, params: dict[str, Any]) -> list[int]:
    query = text(statement)
    if "ids" in params:
        query = query.bindparams(bindparam("ids", type_=postgresql.ARRAY(Text)))
    return [int(key) for key in conn.execute(query, params).scalars()]


def entry_id_of(key: int) -> int:
    return key & ROW_ID_MASK
