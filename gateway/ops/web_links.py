"""Where the operators' pages point: one place for every link they make,
so a page never builds a URL from partner text without quoting it.

`/search?...` is served by the search page (ops/web_search.py); the
parameters are the search's own: status, code, since, until, partner.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

NAV = ('<nav><a href="/">overview</a><a href="/flows">flows</a><a href="/search">search</a>'
       '<a href="/rejections">rejections</a><a href="/healthz">health</a><a href="/metrics">metrics</a></nav>')


def flow_link(flow_id: str) -> str:
    return f"/flows/{quote(flow_id, safe='')}"


def piece_link(piece_id: str) -> str:
    return f"/pieces/{quote(piece_id, safe='')}"


def file_link(flow_id: str, *parts: str | int) -> str:
    """A download of one of a flow's files (ops/web_files.py says which)."""
    return flow_link(flow_id) + "/files/" + "/".join(quote(str(p), safe="") for p in parts)


def _query(path: str, **params: str | None) -> str:
    given = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(given)}" if given else path


def flows_link(*, state: str | None = None, partner: str | None = None, since: str | None = None,
               until: str | None = None) -> str:
    return _query("/flows", state=state, partner=partner, since=since, until=until)


def search_link(*, status: str | None = None, code: str | None = None, since: str | None = None,
                until: str | None = None, partner: str | None = None) -> str:
    return _query("/search", status=status, code=code, since=since, until=until, partner=partner)


def login_link(next_path: str) -> str:
    return _query("/login", next=next_path)
