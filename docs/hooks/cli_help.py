"""MkDocs hook: ``<!-- cli-help: SUBCOMMAND -->`` becomes that command's real ``--help``.

The CLI reference is written from the parser itself at every build, so it cannot drift
from the code. Wrapping is fixed at 88 columns, whatever the terminal.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

from meltica_trio.cli import main

MARKER = re.compile(r"^<!-- cli-help:(?P<args>[a-z -]*)-->$", re.MULTILINE)
COLUMNS = "88"


def cli_help(args: list[str]) -> str:
    """What ``meltica-trio ARGS --help`` prints."""
    out = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*args, "--help"])
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return out.getvalue().rstrip()


def _block(match: re.Match[str]) -> str:
    args = match.group("args").split()
    command = " ".join(["meltica-trio", *args, "--help"])
    return f"```text\n$ {command}\n{cli_help(args)}\n```"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace every marker of the page with the help it names."""
    return MARKER.sub(_block, markdown)
