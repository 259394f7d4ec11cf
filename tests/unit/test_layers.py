"""The layers of gateway/ hold: import-linter's contracts (pyproject.toml)
pass on the code as it is, and fail when a lower layer imports an upper one
or two modules of a package import each other."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the gateway package found at `root`, with the repo's contracts."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", str(REPO / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of gateway/ to break on purpose."""
    shutil.copytree(REPO / "gateway", tmp_path / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_code_keeps_its_layers():
    out = lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_the_store_importing_the_command_line_breaks_the_layers(copy: Path):
    add_import(copy / "gateway" / "store" / "db.py", "import gateway.ops.options  # noqa")
    out = lint(copy)
    assert out.returncode != 0
    assert "gateway.store is not allowed to import gateway.ops" in out.stdout


def test_a_lazy_upward_import_breaks_them_too(copy: Path):
    """An import inside a function is still an import: hiding it there does not hide a circle."""
    add_import(copy / "gateway" / "core" / "records.py",
               "def _later():\n    from gateway.pipeline import evaluate  # noqa\n    return evaluate")
    out = lint(copy)
    assert out.returncode != 0
    assert "gateway.core is not allowed to import gateway.pipeline" in out.stdout


def test_channels_and_the_life_cycle_ignore_each_other(copy: Path):
    add_import(copy / "gateway" / "channels" / "registry.py", "import gateway.lifecycle  # noqa")
    out = lint(copy)
    assert out.returncode != 0
    assert "gateway.channels is not allowed to import gateway.lifecycle" in out.stdout


def test_two_modules_of_one_package_importing_each_other_break_the_second_contract(copy: Path):
    add_import(copy / "gateway" / "core" / "clock.py", "import gateway.core.files  # noqa")
    add_import(copy / "gateway" / "core" / "files.py", "import gateway.core.clock  # noqa")
    out = lint(copy)
    assert out.returncode != 0
    assert "no import circle between the modules of any package BROKEN" in out.stdout


def test_no_module_of_the_gateway_is_over_400_lines():
    """Small modules, one job each: a module that grows past this is split by job."""
    big = {str(p.relative_to(REPO)): n for p in (REPO / "gateway").rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert big == {}
