"""Alembic's command line on the store's revisions, configured in code (no alembic.ini):

    python -m gateway.store.migrations revision --autogenerate -m "notice: retry count"
    python -m gateway.store.migrations check          # do the revisions match store/tables.py?
    python -m gateway.store.migrations history
    python -m gateway.store.migrations upgrade head --sql
    python -m gateway.store.migrations --url postgresql+psycopg://... current

Every Alembic command and option is there (`--help`). Without --url the
database is a throw-away SQLite file brought to the newest revision first:
what `revision --autogenerate` and `check` compare store/tables.py with. A
new revision is numbered after the last (versions/0002_notice_retry_count.py)
unless --rev-id is given. The gateway applies the revisions itself at start
(gateway.store.db): a deployed database needs nothing run from here."""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import CommandLine
from alembic.script import ScriptDirectory

from gateway.store import migrations


def main(argv: list[str] | None = None) -> None:
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--url", help="the database to compare with or act on (default: a throw-away SQLite)")
    known, rest = ours.parse_known_args(argv)
    cli = CommandLine(prog="python -m gateway.store.migrations [--url URL]")
    options = cli.parser.parse_args(rest)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    if options.cmd[0] is command.revision and not options.rev_id:
        options.rev_id = next_revision_id()
    with tempfile.TemporaryDirectory(prefix="gateway-migrations-") as scratch:
        url = known.url
        if url is None:
            url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
            command.upgrade(migrations.config(url=url), "head")  # before logging is set up: not shown
        logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
        logging.getLogger("alembic").setLevel(logging.INFO)
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin loaded
        cfg = migrations.config(url=url)
        cfg.cmd_opts = options
        cli.run_cmd(cfg, options)


def next_revision_id() -> str:
    """The number after the highest numbered revision: 0002 after 0001."""
    numbers = [int(s.revision) for s in ScriptDirectory(str(migrations.SCRIPTS)).walk_revisions()
               if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


if __name__ == "__main__":
    main()
