"""The demo a new home starts with: the demo directory and three sample
invoices in inbox/demo-fournisseur/, so a first `gateway run` shows routing
at work ([demo] seed = false in gateway.toml, or GATEWAY_DEMO_SEED=false,
turns it off)."""
from __future__ import annotations

import shutil
from pathlib import Path

from gateway.core.config import Settings
from gateway.store.partners import ensure_folders
from gateway.rules.directory import DEMO_DIR, demo_files, directory_loaded, import_files


def seed_demo(s: Settings) -> Path | None:
    """Load the demo directory (unless a directory is loaded) and copy the
    sample invoices; returns the inbox they went to, None when turned off."""
    if not s.section("demo").get("seed", True):
        return None
    if not directory_loaded(s):
        import_files(s, demo_files())
    box, _outbox = ensure_folders(s, "demo-fournisseur")  # its folders, as `gateway partner add` makes them
    for f in sorted((DEMO_DIR / "samples").glob("*.xml")):
        shutil.copyfile(f, box / f.name)
    return box
