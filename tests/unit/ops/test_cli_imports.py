"""Starting `gateway` imports every command group (ops/cli/main.py): the
heavy libraries (PDF signatures, Saxon, the web server, SFTP, the store's
ORM, the pipeline) must wait for the command that needs them."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyhanko", "saxonche", "fastapi", "starlette", "uvicorn", "paramiko", "pypdf", "sqlalchemy", "sqlmodel",
         "alembic", "watchdog", "gateway.store.db", "gateway.pipeline.stages", "gateway.rules.rulesets",
         "gateway.channels", "gateway.runtime")


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_module() -> None:
    loaded = _modules("import gateway.ops.cli.main")
    assert "gateway.ops.cli.validate" in loaded and "gateway.ops.cli.run" in loaded  # every group registered
    assert sorted(m for m in loaded if m in HEAVY or m.split(".")[0] in HEAVY) == []


def test_a_command_still_imports_what_it_needs() -> None:
    # the check above must be able to fail: running a command's body loads its modules
    loaded = _modules("import gateway.ops.cli.main\nfrom gateway.ops.cli import filters\n"
                      "filters.print_json([])")
    assert "gateway.ops.search_query" in loaded and "sqlalchemy" in loaded


def test_the_service_main_process_imports_no_pipeline() -> None:
    # `gateway run`: its workers evaluate (the fork server imported the pipeline for them), not the main process
    loaded = _modules("import gateway.ops.cli.main, gateway.runtime.service")
    assert {"gateway.runtime.worker", "gateway.pipeline.evaluate", "gateway.pipeline.stages", "pypdf",
            "pyhanko", "saxonche"} & loaded == set()
    assert "gateway.store.repository" in loaded and "gateway.lifecycle.changes" in loaded
