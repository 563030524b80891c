"""Generate `protocol/messages/` and `protocol/coordinator/` from Kafka's JSON specs.

Run ``python -m protocol.codegen [--input DIR] [--output DIR]``. The input defaults to
``<repo>/../shared/kafka-protocol``; the output root defaults to ``<repo>/protocol`` (the
modules go into its ``messages/`` and ``coordinator/`` subfolders). What is generated:

* every request whose ``listeners`` include ``broker``, and its response;
* ``RequestHeader``, ``ResponseHeader``, ``ConsumerProtocolSubscription``,
  ``ConsumerProtocolAssignment``;
* every file in ``coordinator-records/``.
"""

from __future__ import annotations

from pathlib import Path

from protocol.codegen.emit import HEADER, generate_module
from protocol.codegen.schema import Spec, parse_spec, snake

__all__ = ["default_input", "generate", "select_specs"]

REPO = Path(__file__).resolve().parents[2]
DATA_SCHEMAS = {"RequestHeader", "ResponseHeader", "ConsumerProtocolSubscription",
                "ConsumerProtocolAssignment"}


def default_input() -> Path:
    return REPO.parent / "shared" / "kafka-protocol"


def select_specs(input_dir: Path) -> tuple[list[Spec], list[Spec]]:
    """The message specs and the coordinator-record specs to generate, sorted by file name."""
    specs = [parse_spec(p) for p in sorted((input_dir / "messages").glob("*.json"))]
    requests = {s.api_key: s for s in specs if s.kind == "request"}
    keys = {k for k, s in requests.items() if "broker" in s.listeners}
    chosen = [s for s in specs
              if (s.kind in ("request", "response") and s.api_key in keys)
              or s.name in DATA_SCHEMAS]
    coord = [parse_spec(p) for p in sorted((input_dir / "coordinator-records").glob("*.json"))]
    return chosen, coord


def _registry_messages(specs: list[Spec]) -> str:
    reqs = sorted((s for s in specs if s.kind == "request"), key=lambda s: s.api_key or 0)
    resps = sorted((s for s in specs if s.kind == "response"), key=lambda s: s.api_key or 0)
    others = sorted((s for s in specs if s.kind not in ("request", "response")),
                    key=lambda s: s.name)
    L = [HEADER, "# ruff: noqa",
         '"""Registry of the generated message codecs: api key -> request/response class."""',
         "",
         "from __future__ import annotations",
         ""]
    for s in sorted(specs, key=lambda s: snake(s.name)):
        L.append(f"from protocol.messages.{snake(s.name)} import {s.name}")
    L.append("")
    names = sorted(s.name for s in specs)
    L.append("__all__ = [")
    for n in ["API_NAMES", "REQUESTS", "RESPONSES", *names]:
        L.append(f"    {n!r},")
    L.append("]")
    L.append("")
    L.append("REQUESTS: dict[int, type] = {")
    for s in reqs:
        L.append(f"    {s.api_key}: {s.name},")
    L.append("}")
    L.append("RESPONSES: dict[int, type] = {")
    for s in resps:
        L.append(f"    {s.api_key}: {s.name},")
    L.append("}")
    L.append("API_NAMES: dict[int, str] = {")
    for s in reqs:
        L.append(f"    {s.api_key}: {s.name.removesuffix('Request')!r},")
    L.append("}")
    L.append("DATA_SCHEMAS: dict[str, type] = {")
    for s in others:
        L.append(f"    {s.name!r}: {s.name},")
    L.append("}")
    return "\n".join(L) + "\n"


def _registry_coordinator(specs: list[Spec]) -> str:
    L = [HEADER, "# ruff: noqa",
         '"""Registry of the generated coordinator-record codecs: name -> class."""',
         "",
         "from __future__ import annotations",
         ""]
    for s in sorted(specs, key=lambda s: snake(s.name)):
        L.append(f"from protocol.coordinator.{snake(s.name)} import {s.name}")
    L.append("")
    L.append("__all__ = [")
    for n in ["RECORDS", *sorted(s.name for s in specs)]:
        L.append(f"    {n!r},")
    L.append("]")
    L.append("")
    L.append("RECORDS: dict[str, type] = {")
    for s in sorted(specs, key=lambda s: s.name):
        L.append(f"    {s.name!r}: {s.name},")
    L.append("}")
    return "\n".join(L) + "\n"


def generate(input_dir: Path, output_root: Path) -> dict[Path, str]:
    """Render every generated file; returns ``{path: source}`` (nothing is written)."""
    msgs, coord = select_specs(input_dir)
    files: dict[Path, str] = {}
    for folder, specs, registry in (("messages", msgs, _registry_messages(msgs)),
                                    ("coordinator", coord, _registry_coordinator(coord))):
        d = output_root / folder
        for s in specs:
            files[d / f"{snake(s.name)}.py"] = generate_module(s)
        files[d / "__init__.py"] = registry
    return files


def write(files: dict[Path, str]) -> None:
    """Write the rendered files, removing stale generated modules in the same folders."""
    folders = {p.parent for p in files}
    for d in folders:
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.py"):
            if old not in files and old.read_text(encoding="utf-8").startswith(HEADER):
                old.unlink()
    for p, src in files.items():
        if not p.exists() or p.read_text(encoding="utf-8") != src:
            p.write_text(src, encoding="utf-8")
