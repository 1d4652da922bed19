"""The public API is exactly what the package root re-exports, and the import gate holds."""

from __future__ import annotations

import ast
import inspect
import tomllib
from pathlib import Path

import pytest

import meltica_trio

PACKAGE_DIR = Path(meltica_trio.__file__).parent
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
BANNED = frozenset({"json", "asyncio", "websockets", "wsproto", "aiohttp"})
PACKAGE_FILES = sorted(PACKAGE_DIR.rglob("*.py"))


def test_all_is_sorted_without_duplicates() -> None:
    assert meltica_trio.__all__ == sorted(meltica_trio.__all__)
    assert len(meltica_trio.__all__) == len(set(meltica_trio.__all__))


@pytest.mark.parametrize("name", meltica_trio.__all__)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from meltica_trio import {name}", namespace)
    assert namespace[name] is getattr(meltica_trio, name)


@pytest.mark.parametrize("name", meltica_trio.__all__)
def test_every_public_class_and_function_has_a_docstring(name: str) -> None:
    obj = getattr(meltica_trio, name)
    if inspect.isclass(obj) or inspect.isroutine(obj):
        # obj.__doc__, not inspect.getdoc(): a class must not borrow its base's docstring.
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def _names_bound_in_init() -> set[str]:
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_all_matches_the_public_names_defined_in_the_package_root() -> None:
    public = {
        name
        for name in _names_bound_in_init()
        if not name.startswith("_") and not inspect.ismodule(getattr(meltica_trio, name))
    }
    assert public
    assert set(meltica_trio.__all__) == public


# -- the import gate -------------------------------------------------------------


def _banned_imports(tree: ast.AST) -> list[str]:
    """Banned modules imported anywhere in ``tree``, statically or by name."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value)
    return [module for module in found if module.partition(".")[0] in BANNED]


@pytest.mark.parametrize(
    "source",
    [
        "import json",
        "import asyncio.tasks",
        "from websockets import connect",
        "import trio as t, wsproto",
        "def f():\n    import aiohttp",
        "from json import loads as fast_loads",
        "import importlib\nimportlib.import_module('asyncio')",
        "__import__('json')",
    ],
)
def test_import_gate_detects_banned_imports(source: str) -> None:
    assert _banned_imports(ast.parse(source))


@pytest.mark.parametrize("source", ["import orjson", "import trio", "from . import json_codec"])
def test_import_gate_allows_other_imports(source: str) -> None:
    assert _banned_imports(ast.parse(source)) == []


def test_import_gate_sees_the_package_sources() -> None:
    assert PACKAGE_DIR / "__init__.py" in PACKAGE_FILES
    assert PACKAGE_DIR / "events" / "_codec.py" in PACKAGE_FILES


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_package_module_imports_no_banned_module(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _banned_imports(tree) == []


def test_ruff_still_bans_the_gated_modules_in_the_package() -> None:
    lint = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    assert set(lint["flake8-tidy-imports"]["banned-api"]) >= BANNED
    assert "TID" in lint["select"] or "TID251" in lint["select"]
    for pattern, rules in lint.get("per-file-ignores", {}).items():
        if not pattern.startswith(("tests/", "bench/", "examples/")):
            assert not [rule for rule in rules if rule.startswith("TID")], pattern
    assert not [rule for rule in lint.get("ignore", []) if rule.startswith("TID")]
