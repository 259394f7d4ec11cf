"""A flow's files for logged-in operators: the original (its archive copy),
its report (JSON, XML), the status files of its pieces and their pivots.

Only what the store records for that flow is served: the archive path of
the flow's row, the report and delivery folders of its events (with names
made from its own ids), the status files' bytes from the `notice` table.
A path from a request is never opened; a recorded path is served only if it
resolves inside archive/ or outbox/ to a regular file (so neither a link a
partner left in its outbox nor an altered row reaches anything else).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import Settings
from gateway.ops.web_links import file_link
from gateway.store.outputs import FlowOutputs, flow_outputs, status_file_body
from gateway.store.repository import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Download:
    """One file to send: from a path, or bytes kept in the store."""

    file_name: str  # for Content-Disposition: letters, digits, . _ - only
    media_type: str
    path: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class FileLink:
    label: str
    href: str
    piece_id: str | None = None


def safe_download_name(name: str) -> str:
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._")
    return base[:120] or "file"


def _inside(path: Path, root: Path) -> Path | None:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(root.resolve()) or not real.is_file() or path.is_symlink():
        return None
    return real


def _media(name: str) -> str:
    return {".json": "application/json", ".xml": "application/xml", ".pdf": "application/pdf"}.get(
        Path(name).suffix.lower(), "application/octet-stream")


def _report(settings: Settings, flow_id: str, outs: FlowOutputs, suffix: str) -> Path | None:
    for folder in reversed(outs.report_folders):
        found = _inside(Path(folder) / f"{flow_id}{suffix}", settings.outbox)
        if found is not None:
            return found
    return None


def _pivot(settings: Settings, outs: FlowOutputs, piece_id: str) -> Path | None:
    for d in outs.deliveries:
        if d.piece_id == piece_id:
            return _inside(settings.home / d.folder / f"{piece_id}.pivot.xml", settings.outbox)
    return None


def flow_files(settings: Settings, flow_id: str) -> tuple[FileLink, ...]:
    """The flow's files that can be downloaded now, with their links."""
    flow = Store(settings).flow(flow_id)
    if flow is None:
        return ()
    outs = flow_outputs(settings, flow_id)
    links = []
    if _inside(Path(flow.archive_path), settings.archive) is not None:
        links.append(FileLink(f"original: {flow.file_name}", file_link(flow_id, "original")))
    for suffix in (".json", ".xml"):
        if _report(settings, flow_id, outs, suffix) is not None:
            links.append(FileLink(f"report {flow_id}{suffix}", file_link(flow_id, f"report{suffix}")))
    for d in outs.deliveries:
        if _pivot(settings, outs, d.piece_id) is not None:
            links.append(FileLink(f"pivot {d.piece_id}.pivot.xml", file_link(flow_id, "pivot", d.piece_id), d.piece_id))
    for sf in outs.status_files:
        links.append(FileLink(f"status file {sf.file_name} (for {sf.party})", file_link(flow_id, "status", sf.id),
                              sf.piece_id))
    return tuple(links)


def resolve(settings: Settings, flow_id: str, kind: str, key: str | None = None) -> Download | None:
    """The file behind a download link, or None (unknown, gone, or not this flow's)."""
    flow = Store(settings).flow(flow_id)
    if flow is None:
        return None
    if kind == "original" and key is None:
        path = _inside(Path(flow.archive_path), settings.archive)
        name = safe_download_name(flow.file_name)
        return Download(name, _media(name), path=path) if path else None
    outs = flow_outputs(settings, flow_id)
    if kind in ("report.json", "report.xml") and key is None:
        suffix = kind[len("report"):]
        path = _report(settings, flow_id, outs, suffix)
        return Download(safe_download_name(f"{flow_id}{suffix}"), _media(suffix), path=path) if path else None
    if kind == "pivot" and key:
        path = _pivot(settings, outs, key)
        return Download(safe_download_name(f"{key}.pivot.xml"), "application/xml", path=path) if path else None
    if kind == "status" and key and key.isdigit():
        found = status_file_body(settings, flow_id, int(key))
        if found is None:
            return None
        name, data = found
        return Download(safe_download_name(name), _media(name), data=data)
    return None
