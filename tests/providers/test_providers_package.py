"""The venue core stays sans-I/O and exports what it documents."""

from __future__ import annotations

import ast
from pathlib import Path

import meltica_trio.providers as providers
from meltica_trio.providers import binance, okx

PACKAGE = Path(providers.__file__).parent
IO_MODULES = {"trio", "trio_websocket", "httpx", "socket", "asyncio"}
# The I/O layer: the transport, the runtime that drives connections, the recorder.
# Everything else (parsers, books, assembler, adapters, replay) stays sans-I/O.
IO_LAYER = {"_transport.py", "_runtime.py", "_recorder.py"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_provider_core_module_imports_network_or_trio() -> None:
    modules = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in IO_LAYER)
    assert len(modules) >= 12
    offenders = {p.name: imported_roots(p) & IO_MODULES for p in modules}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_all_has_no_duplicates_and_every_name_resolves() -> None:
    # ruff (RUF022) keeps __all__ sorted.
    for module in (providers, binance, okx):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None, name
