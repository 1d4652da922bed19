"""The documentation tells the truth about the code it documents.

- every public name of ``meltica_trio`` has a docstring and is rendered in the API
  reference, and so is every public name of the subpackages users import;
- the configuration page lists every ``PipelineConfig`` key with its default, and the
  example TOML file loads;
- the event schema page's tables match the kinds, delivery classes and payload classes;
- the CLI page shows every subcommand's help;
- every Python block on every page compiles and its ``meltica_trio`` imports resolve,
  and every snippet a page includes exists.

The site itself is built with ``mkdocs build --strict`` by ``make docs`` (part of
``make test``), which fails on any warning, broken link or page left out of the nav.
"""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import attrs
import pytest

import meltica_trio
from meltica_trio import Event, PipelineConfig, decode_event
from meltica_trio.events import DELIVERY_CLASS, PAYLOAD_TYPE, Kind

ROOT: Final = Path(__file__).resolve().parents[1]
DOCS: Final = ROOT / "docs"
API: Final = DOCS / "reference" / "api"
SUBPACKAGES: Final = ("bridge", "venue", "testing", "orders", "providers", "telemetry", "events")
"""Subpackages users import from; every name in their ``__all__`` is in the reference."""
DIRECTIVE: Final = re.compile(r"^::: ([\w.]+)$")


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def rendered() -> dict[str, list[str] | None]:
    """Each ``::: path`` of the API pages -> its ``members:`` list (None: all members)."""
    found: dict[str, list[str] | None] = {}
    for page in sorted(API.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            match = DIRECTIVE.match(line)
            if match is None:
                continue
            members: list[str] | None = None
            for option in lines[index + 1 :]:
                if not option.startswith("    "):
                    break
                if option.strip() in ("members:", "members: false"):
                    members = []
                elif members is not None and option.strip().startswith("- "):
                    members.append(option.strip()[2:])
            found[match.group(1)] = members
    return found


@pytest.fixture(scope="module")
def package() -> Any:
    """The package as griffe (and so mkdocstrings) reads it, aliases resolved."""
    griffe = pytest.importorskip("griffe", reason="the docs extra brings griffe")
    return griffe.load("meltica_trio", search_paths=[str(ROOT)], resolve_aliases=True)


def test_every_public_name_has_a_docstring(package: Any) -> None:
    missing = []
    for name in meltica_trio.__all__:
        member = package.members[name]
        target = member.final_target if member.is_alias else member
        if not target.docstring or not target.docstring.value.strip():
            missing.append(name)
        runtime = getattr(meltica_trio, name)
        if (inspect.isclass(runtime) or inspect.isfunction(runtime)) and not runtime.__doc__:
            missing.append(f"{name} (at run time)")
    assert missing == []


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_of_a_subpackage_has_a_docstring(package: Any, name: str) -> None:
    # The reference renders only documented members: an undocumented one would vanish.
    module = importlib.import_module(f"meltica_trio.{name}")
    missing = []
    for member_name in module.__all__:
        member = package.members[name].members[member_name]
        target = member.final_target if member.is_alias else member
        if not target.docstring or not target.docstring.value.strip():
            missing.append(member_name)
    assert missing == []


def test_every_public_name_is_in_the_api_reference() -> None:
    paths = rendered()
    missing = [name for name in meltica_trio.__all__ if f"meltica_trio.{name}" not in paths]
    assert missing == []


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_of_a_subpackage_is_in_the_api_reference(name: str) -> None:
    module: ModuleType = importlib.import_module(f"meltica_trio.{name}")
    paths = rendered()
    listed = paths.get(f"meltica_trio.{name}", [])
    missing = []
    for member in module.__all__:
        obj = getattr(module, member)
        at_top = member in meltica_trio.__all__ and getattr(meltica_trio, member) is obj
        if at_top and f"meltica_trio.{member}" in paths:
            continue
        if listed is None or member in listed or f"meltica_trio.{name}.{member}" in paths:
            continue
        missing.append(member)
    assert missing == []


def test_the_api_reference_names_nothing_that_does_not_exist() -> None:
    for path, members in rendered().items():
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError:
            parent, _, attribute = path.rpartition(".")
            assert hasattr(importlib.import_module(parent), attribute), path
        else:
            assert [m for m in members or [] if not hasattr(module, m)] == [], path


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, cells stripped."""
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # the header and the ---|--- line


def test_the_configuration_page_lists_every_key_with_its_default() -> None:
    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    rows = {row[0].strip("`"): row for row in table_rows(text, "## The keys")}
    fields = attrs.fields(PipelineConfig)
    assert list(rows) == [field.name for field in fields]
    default = PipelineConfig()
    for field in fields:
        value = getattr(default, field.name)
        shown = rows[field.name][2].strip("`")
        if isinstance(value, enum.Enum):
            value = value.value
        if value is None:
            assert shown == "absent", field.name
        elif isinstance(value, bool):
            assert shown == str(value).lower(), field.name
        elif isinstance(value, tuple):
            assert shown == "[]", field.name
        elif isinstance(value, str):
            assert shown == f'"{value}"', field.name
        else:
            assert float(shown) == float(value), field.name


def test_the_example_toml_loads_and_says_what_it_changes() -> None:
    config = PipelineConfig.from_toml(ROOT / "examples" / "pipeline.toml")
    changed = {
        field.name
        for field in attrs.fields(PipelineConfig)
        if getattr(config, field.name) != getattr(PipelineConfig(), field.name)
    }
    assert changed == {"debug", "instruments", "merges"}  # the ones marked "not the default"
    assert config.merges[0].name == "btc-top"


def schema() -> str:
    return (DOCS / "reference" / "event-schema.md").read_text(encoding="utf-8")


def test_the_event_schema_maps_each_kind_to_its_class_and_payload() -> None:
    rows = table_rows(schema(), "## Kinds, delivery classes and payloads")
    table = {row[0].strip("`"): (row[2], row[3]) for row in rows}
    expected = {
        kind.value: (
            DELIVERY_CLASS[kind].value.upper(),
            f"[`{PAYLOAD_TYPE[kind].__name__}`][meltica_trio.{PAYLOAD_TYPE[kind].__name__}]",
        )
        for kind in Kind
    }
    assert table == expected


def test_the_event_schema_lists_every_envelope_and_payload_field_in_order() -> None:
    text = schema()
    envelope = [row[0].strip("`") for row in table_rows(text, "## The envelope")]
    assert envelope == [field.name for field in attrs.fields(Event)]
    payloads = {*PAYLOAD_TYPE.values(), meltica_trio.VenueTop}
    for payload in payloads:
        rows = table_rows(text, f"### {payload.__name__}\n")
        assert [row[0].strip("`") for row in rows] == [
            field.name for field in attrs.fields(payload)
        ], payload.__name__


def test_the_event_schema_wire_example_decodes() -> None:
    block = schema().split("```json\n", 1)[1].split("```", 1)[0]
    event = decode_event(block)
    assert (event.kind, event.payload.__class__) == (Kind.TRADE, meltica_trio.Trade)


def cli_help_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_help", DOCS / "hooks" / "cli_help.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_page_shows_every_subcommand() -> None:
    hook = cli_help_module()
    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    shown = {" ".join(m.group("args").split()) for m in hook.MARKER.finditer(text)}
    commands = re.search(r"\{([a-z,]+)\}", hook.cli_help([])).group(1).split(",")
    dlq = re.search(r"\{([a-z,]+)\}", hook.cli_help(["dlq"])).group(1).split(",")
    expected = {"", *commands, *(f"dlq {sub}" for sub in dlq)}
    assert shown == expected
    for command in commands:
        assert f"| `{command}` |" in text, f"{command} is missing from the summary table"


def test_the_cli_hook_writes_the_real_help() -> None:
    hook = cli_help_module()
    page = hook.on_page_markdown("a\n<!-- cli-help: venue -->\nb")
    assert page.startswith("a\n```text\n$ meltica-trio venue --help\nusage: meltica-trio venue")
    assert "--seed SEED" in page
    assert page.endswith("```\nb")


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_block_compiles_and_its_imports_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for block in re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        if block.startswith("--8<--"):
            continue  # included from a file that ruff, mypy and the tests check
        tree = compile(
            block, str(page), "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("meltica"):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{page}: {node.module}.{alias.name}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_included_snippet_exists(page: Path) -> None:
    # The block form (--8<-- / path:section / --8<--), which ruff format leaves alone.
    blocks = re.findall(r"^--8<--\n(.*?)^--8<--$", page.read_text(encoding="utf-8"), re.M | re.S)
    for spec in (line for block in blocks for line in block.splitlines()):
        path, _, section = spec.partition(":")
        source = (ROOT / path).read_text(encoding="utf-8")
        if section:
            assert f"--8<-- [start:{section}]" in source, spec
            assert f"--8<-- [end:{section}]" in source, spec
    assert not re.search(r'^--8<-- "', page.read_text(encoding="utf-8"), re.M), (
        "use the block form"
    )
