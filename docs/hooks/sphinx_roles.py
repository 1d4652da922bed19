"""Griffe extension: Sphinx cross-reference roles in docstrings become inline code.

The package's docstrings name other objects the way trio's and attrs' do
(``:class:`~meltica_trio.Recycler```, ``:meth:`Provider.serve```). mkdocstrings reads
docstrings as Markdown, where those roles would show up literally, so each one is
rewritten to the name it points at, as code: ``~`` keeps only the last component, as
Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
