"""Regenerate the tables of docs/configuration.md from broker/config.py.

    .venv/bin/python docs/gen_config_reference.py          # rewrite the tables
    .venv/bin/python docs/gen_config_reference.py --check  # exit 1 if they are stale

Only the text between the GENERATED markers is rewritten; the prose around it is kept.
tests/test_docs.py runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from broker.config import (  # noqa: E402
    BROKER_CONFIGS,
    ODRADEK_CONFIGS,
    TOPIC_CONFIG_SYNONYMS,
    config_string,
    env_name,
    kafka_broker_defs,
    kafka_topic_defs,
)
from storage import LogConfig  # noqa: E402

DOC = Path(__file__).with_name("configuration.md")
BEGIN = "<!-- BEGIN GENERATED: {} (docs/gen_config_reference.py) -->"
END = "<!-- END GENERATED: {} -->"


def _cell(text: str | None) -> str:
    if text is None or text == "":
        return "(none)" if text is None else '""'
    return "`" + text.replace("|", "\\|") + "`"


def broker_table() -> str:
    kafka = kafka_broker_defs()
    rows = ["| name | type | default | dynamic | environment variable | notes |",
            "|---|---|---|---|---|---|"]
    for defn in sorted(BROKER_CONFIGS, key=lambda d: d.name):
        dynamic = "yes" if kafka[defn.name].dynamic else "no"
        rows.append(f"| `{defn.name}` | {defn.type.value.lower()} | "
                    f"{_cell(config_string(defn.default))} | {dynamic} | "
                    f"`{env_name(defn.name)}` | {defn.doc} |")
    return "\n".join(rows)


def odradek_table() -> str:
    rows = ["| name | type | default | dynamic | environment variable | notes |",
            "|---|---|---|---|---|---|"]
    for defn in sorted(ODRADEK_CONFIGS, key=lambda d: d.name):
        rows.append(f"| `{defn.name}` | {defn.type.value.lower()} | "
                    f"{_cell(config_string(defn.default))} | no | "
                    f"`{env_name(defn.name)}` | {defn.doc} |")
    return "\n".join(rows)


def topic_table() -> str:
    kafka = kafka_topic_defs()
    rows = ["| name | Kafka's default | broker config that sets the default |",
            "|---|---|---|"]
    for name in LogConfig.names():
        defn = kafka.get(name)
        default = defn.default if defn is not None else None
        synonyms = ", ".join(f"`{s}`" for s in TOPIC_CONFIG_SYNONYMS.get(name, ())) or "-"
        rows.append(f"| `{name}` | {_cell(default)} | {synonyms} |")
    return "\n".join(rows)


SECTIONS = {"broker": broker_table, "odradek": odradek_table, "topic": topic_table}


def render(text: str) -> str:
    for section, make in SECTIONS.items():
        begin, end = BEGIN.format(section), END.format(section)
        head, sep, rest = text.partition(begin)
        if not sep:
            raise SystemExit(f"{DOC.name}: marker {begin!r} missing")
        _, sep, tail = rest.partition(end)
        if not sep:
            raise SystemExit(f"{DOC.name}: marker {end!r} missing")
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{DOC} is stale: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
