"""Regenerate the supported-APIs table of docs/apis.md from the handler registry.

    .venv/bin/python docs/gen_api_table.py          # rewrite the table
    .venv/bin/python docs/gen_api_table.py --check  # exit 1 if it is stale

The table lists what ApiVersions advertises (`broker.handlers.REGISTRY`), with the
handler's module; the "notes" column is kept from the current file, keyed by API key, so
hand-written notes survive a regeneration. tests/test_docs.py runs the check, so a handler
added without a row (or a version range changed) fails the tests.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broker.handlers import load_all  # noqa: E402
from protocol.messages import REQUESTS  # noqa: E402

DOC = Path(__file__).with_name("apis.md")
BEGIN = "<!-- BEGIN GENERATED: apis (docs/gen_api_table.py) -->"
END = "<!-- END GENERATED: apis -->"
HEADER = ["| key | API | versions | handler | notes |", "|---|---|---|---|---|"]
_ROW = re.compile(r"^\|\s*(\d+)\s*\|(?:[^|]*\|){3}\s*(.*?)\s*\|\s*$")


def existing_notes(text: str) -> dict[int, str]:
    notes: dict[int, str] = {}
    _, _, rest = text.partition(BEGIN)
    block, _, _ = rest.partition(END)
    for line in block.splitlines():
        match = _ROW.match(line)
        if match:
            notes[int(match.group(1))] = match.group(2)
    return notes


def table(notes: dict[int, str]) -> str:
    rows = list(HEADER)
    for key, reg in sorted(load_all().items()):
        name = REQUESTS[key].__name__.removesuffix("Request")
        module = reg.func.__module__.replace(".", "/") + ".py"
        rows.append(f"| {key} | {name} | {reg.min_version}-{reg.max_version} | "
                    f"`{module}` | {notes.get(key, '')} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    if not sep:
        raise SystemExit(f"{DOC.name}: marker {BEGIN!r} missing")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise SystemExit(f"{DOC.name}: marker {END!r} missing")
    return f"{head}{BEGIN}\n{table(existing_notes(text))}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{DOC} is stale: run python docs/gen_api_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
