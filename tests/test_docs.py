"""docs/: the generated tables are up to date, and the API table follows the registry.

`docs/gen_api_table.py` and `docs/gen_config_reference.py` regenerate the tables between
their markers; these tests run their `--check` and show that a handler or config added
without regenerating makes the check fail.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from broker.config import BROKER_CONFIGS, ODRADEK_CONFIGS
from broker.handlers import REGISTRY, Registration, load_all

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ["getting-started.md", "configuration.md", "apis.md", "operations.md",
         "architecture.md", "cli.md"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def api_table() -> ModuleType:
    return _load("gen_api_table")


@pytest.fixture(scope="module")
def config_reference() -> ModuleType:
    return _load("gen_config_reference")


def test_api_table_is_up_to_date(api_table):
    assert api_table.main(["--check"]) == 0


def test_api_table_has_a_row_per_handler(api_table):
    text = (DOCS / "apis.md").read_text()
    rows = {int(m.group(1)): (m.group(2), m.group(3)) for m in re.finditer(
        r"^\| (\d+) \| (\w+) \| (\d+-\d+) \|", text, re.M)}
    assert rows.keys() == load_all().keys()
    for key, reg in REGISTRY.items():
        assert rows[key][1] == f"{reg.min_version}-{reg.max_version}"


def test_api_table_check_fails_for_a_new_handler(api_table, monkeypatch):
    # A version range changed without regenerating, then a handler without its row.
    produce = REGISTRY[0]
    monkeypatch.setitem(REGISTRY, 0, Registration(0, produce.min_version, 99,
                                                  produce.func, produce.is_async))
    assert api_table.main(["--check"]) == 1
    monkeypatch.setitem(REGISTRY, 0, produce)
    assert api_table.main(["--check"]) == 0
    monkeypatch.setitem(REGISTRY, 17, Registration(17, 0, 1, produce.func, False))
    assert api_table.main(["--check"]) == 1  # SaslHandshake served, no row
    monkeypatch.delitem(REGISTRY, 17)
    monkeypatch.delitem(REGISTRY, 0)
    assert api_table.main(["--check"]) == 1  # a row whose handler went away


def test_api_table_keeps_notes(api_table):
    text = (DOCS / "apis.md").read_text()
    assert api_table.existing_notes(text)[18] != ""
    assert api_table.render(text) == text


def test_config_reference_is_up_to_date(config_reference):
    assert config_reference.main(["--check"]) == 0


def test_config_reference_lists_every_config(config_reference):
    text = (DOCS / "configuration.md").read_text()
    for defn in BROKER_CONFIGS + ODRADEK_CONFIGS:
        assert f"| `{defn.name}` |" in text, defn.name
    from storage import LogConfig

    for name in LogConfig.names():
        assert f"| `{name}` |" in text, name


def test_config_reference_check_fails_when_stale(config_reference, monkeypatch):
    import broker.config

    extra = broker.config.ConfigDef("made.up.config", broker.config.ConfigType.INT, 7)
    monkeypatch.setattr(config_reference, "ODRADEK_CONFIGS", ODRADEK_CONFIGS + (extra,))
    assert config_reference.main(["--check"]) == 1


def test_pages_exist_and_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in PAGES:
        assert (DOCS / page).is_file(), page
        assert f"(docs/{page})" in readme, page


def test_file_references_in_docs_exist():
    """Every `path/to/file.py` a page names exists, so the docs follow renames."""
    for page in PAGES:
        for path in re.findall(r"`((?:broker|protocol|storage|docs|docker|tests)/[\w/.-]+)`",
                               (DOCS / page).read_text()):
            assert (ROOT / path).exists(), f"{page}: {path}"
