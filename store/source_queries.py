"""The sources at a glance, in SQL: counts per state and a page of them, failing first, so a
status page over 10,000 sources reads a hundred rows, not all of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from store.model import SOURCE_STATES, SourceSummary
from store.tables import SourceRow

# StoredSource.state in SQL; tests/store/test_source_queries.py keeps the two in step.
STATE: ColumnElement[str] = case(
    (SourceRow.gone, "gone"),
    (SourceRow.error_kind == "blocked_address", "blocked"),
    (SourceRow.error_count > 0, "backing off"),
    else_="ok",
)


async def source_summary(conn: AsyncConnection, now: datetime) -> SourceSummary:
    active = SourceRow.active.is_(True)
    by_state = select(STATE, func.count()).where(active).group_by(STATE)
    states = dict.fromkeys(SOURCE_STATES, 0)
    states.update({state: count for state, count in (await conn.execute(by_state)).all()})
    due = select(func.count()).where(
        active,
        SourceRow.gone.is_(False),
        SourceRow.next_poll_at <= now,
        or_(SourceRow.lease_expires_at.is_(None), SourceRow.lease_expires_at <= now),
    )
    latest = select(func.max(SourceRow.last_polled_at)).where(active)
    return SourceSummary(
        states=states,
        due=(await conn.execute(due)).scalar_one(),
        last_polled_at=(await conn.execute(latest)).scalar_one(),
    )


async def source_page(
    conn: AsyncConnection,
    states: Sequence[str] | None,
    text: str,
    offset: int,
    limit: int | None,
) -> tuple[list[Row[Any]], int]:
    """Active sources in ``states`` (None: all) whose id, title or URL contains ``text``
    (any case), failing ones first (most failures first), then by id; and how many match."""
    conditions: list[ColumnElement[bool]] = [SourceRow.active.is_(True)]
    if states is not None:
        conditions.append(STATE.in_(states) if states else false())
    if text:
        columns = (SourceRow.id, SourceRow.title, SourceRow.feed_title, SourceRow.url)
        conditions.append(or_(*(c.icontains(text, autoescape=True) for c in columns)))
    order = (STATE == "ok", SourceRow.error_count.desc(), SourceRow.id)
    page = select(SourceRow).where(*conditions).order_by(*order).offset(offset).limit(limit)
    matching = select(func.count()).select_from(SourceRow).where(*conditions)
    rows = list((await conn.execute(page)).all())
    return rows, (await conn.execute(matching)).scalar_one()
