"""`protocol/` is sans-IO: no module imports trio, socket, os or mmap (codegen excepted)."""

from __future__ import annotations

import ast
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {"trio", "socket", "os", "mmap"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value).split(".")[0])
    return found


def test_protocol_modules_do_not_import_io() -> None:
    files = [p for p in PROTOCOL.rglob("*.py") if "codegen" not in p.relative_to(PROTOCOL).parts]
    assert len(files) > 100  # the generated modules are included
    bad = {str(p.relative_to(PROTOCOL)): sorted(_imports(p) & FORBIDDEN) for p in files}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"IO imports in protocol/: {bad}"


def test_checker_detects_forbidden_imports(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text("import os.path\nfrom trio import run\nimport socket as s\n")
    assert _imports(p) & FORBIDDEN == {"os", "trio", "socket"}
