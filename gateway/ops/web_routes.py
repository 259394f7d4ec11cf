"""The operators' pages beyond the overview and the rejections report: the
flows list, a flow and its files, a piece, the login step and /metrics.

`add_pages` is called by web.create_app once its login middleware is in
place: that middleware sets `request.state.operator` (who logged in, or
None) and asks for a login on every path `operators_only` names, even when
no operator exists yet (downloads are never anonymous).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from gateway.core.config import Settings
from gateway.ops import monitoring
from gateway.ops.web_files import resolve
from gateway.ops.web_flow import flow_page
from gateway.ops.web_overview import flows_page
from gateway.ops.web_piece import piece_page

if TYPE_CHECKING:
    from fastapi import FastAPI


def operators_only(path: str) -> bool:
    """Paths that always need a logged-in operator: a flow's files, and the login step."""
    return path == "/login" or (path.startswith("/flows/") and "/files/" in path)


def safe_next(target: str | None) -> str:
    """Where to go back after logging in: a path of this site only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def add_pages(app: "FastAPI", settings: Settings, page: Callable[..., Any], error: Callable[[int, str], Any],
              headers: dict[str, str]) -> None:
    from fastapi import Request, Response
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

    registry = monitoring.registry_for(settings)

    def who(request: Request) -> bool:
        return getattr(request.state, "operator", None) is not None

    @app.get("/flows", response_class=HTMLResponse)
    def flows_view(state: Optional[str] = None, partner: Optional[str] = None, since: Optional[str] = None,
                   until: Optional[str] = None):  # noqa: ANN202
        try:
            return page(flows_page(settings, state=state, partner=partner, since=since, until=until))
        except ValueError as exc:
            return error(400, str(exc))

    @app.get("/flows/{flow_id}", response_class=HTMLResponse)
    def flow_view(flow_id: str, request: Request):  # noqa: ANN202
        text = flow_page(settings, flow_id, logged_in=who(request))
        return error(404, f"no flow {flow_id}") if text is None else page(text)

    @app.get("/pieces/{piece_id}", response_class=HTMLResponse)
    def piece_view(piece_id: str, request: Request):  # noqa: ANN202
        text = piece_page(settings, piece_id, logged_in=who(request))
        return error(404, f"no piece {piece_id}") if text is None else page(text)

    def download(flow_id: str, kind: str, key: str | None) -> Response:
        found = resolve(settings, flow_id, kind, key)
        if found is None:
            return error(404, f"no such file for flow {flow_id}")
        sent = {**headers, "Content-Disposition": f'attachment; filename="{found.file_name}"'}
        if found.path is not None:
            return FileResponse(found.path, media_type=found.media_type, headers=sent)
        return Response(found.data or b"", media_type=found.media_type, headers=sent)

    @app.get("/flows/{flow_id}/files/{kind}")
    def file_view(flow_id: str, kind: str):  # noqa: ANN202
        return download(flow_id, kind, None)

    @app.get("/flows/{flow_id}/files/{kind}/{key}")
    def keyed_file_view(flow_id: str, kind: str, key: str):  # noqa: ANN202
        return download(flow_id, kind, key)

    @app.get("/login")
    def login_view(next: Optional[str] = None):  # noqa: ANN202, A002 - the page's own parameter
        # the middleware asked for the login: here the operator is logged in
        return RedirectResponse(safe_next(next), status_code=303, headers=headers)

    @app.get("/metrics")
    def metrics_view():  # noqa: ANN202
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(monitoring.metrics_text(registry), media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})
