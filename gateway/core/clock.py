"""One time format everywhere: aware UTC, shown as ISO 8601 with a Z."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Aware UTC timestamps everywhere (one zone, so SQLite's text compare holds)."""
    return datetime.now(timezone.utc)


def as_utc(dt: datetime) -> datetime:
    """An aware UTC time; a naive one (as SQLite gives them back) is UTC already."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z, as return files show times."""
    return as_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")
