"""The scenario catalogue of compat/SCENARIOS.md and the client manifests (client.json).

Columns of the report, in order: `metadata`, `topics-admin`, `produce-consume`, the five
`produce-codec-<codec>`, the five `consume-codec-<codec>`, then `list-offsets-by-time`,
`consumer-group`, `resume-committed`, `idempotent-producer`, `transactions`,
`delete-records`. A `consume-codec-<codec>` column is run as
`consume-codec-<codec>:<writer>`: the runner picks the writer (see `pick_writer`).

Manifests: every `compat/<client>/client.json` (the folder name is the client name). In
`install` and `driver` commands, `{python}` stands for the Python running the runner, so a
client folder can make its own venv or run a stdlib-only driver without naming an
interpreter path.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

SCENARIOS: tuple[str, ...] = (
    "metadata",
    "topics-admin",
    "produce-consume",
    *(f"produce-codec-{codec}" for codec in CODECS),
    *(f"consume-codec-{codec}" for codec in CODECS),
    "list-offsets-by-time",
    "consumer-group",
    "resume-committed",
    "idempotent-producer",
    "transactions",
    "delete-records",
)

# Report order: by language as the issue lists them (by the language's first word), then
# by name.
LANGUAGE_ORDER = ("Python", "C", "JavaScript", "Java", "Go")

DEFAULT_TIMEOUT_S = 300
DEFAULT_INSTALL_TIMEOUT_S = 900


class ManifestError(Exception):
    """A client.json that is missing a field or has one of the wrong type."""


@dataclass(frozen=True)
class Client:
    """One client row: its folder and what its client.json says."""

    name: str
    folder: Path
    language: str
    client: str
    install: list[list[str]]
    driver: list[str]
    timeout_s: float = DEFAULT_TIMEOUT_S
    install_timeout_s: float = DEFAULT_INSTALL_TIMEOUT_S
    extra: dict[str, object] = field(default_factory=dict)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` with `{python}` replaced by the runner's interpreter."""
        return [arg.replace("{python}", sys.executable) for arg in argv]


def load_client(folder: Path) -> Client:
    """Read `folder/client.json`; the row name is the folder's name, whatever `name` says."""
    path = folder / "client.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a JSON object")

    def need(key: str, kind: type) -> object:
        value = data.get(key)
        if not isinstance(value, kind):
            raise ManifestError(f"{path}: `{key}` must be a {kind.__name__}")
        return value

    install = need("install", list)
    driver = need("driver", list)
    assert isinstance(install, list) and isinstance(driver, list)
    if not all(isinstance(cmd, list) and all(isinstance(a, str) for a in cmd) and cmd
               for cmd in install):
        raise ManifestError(f"{path}: `install` must be a list of non-empty string lists")
    if not driver or not all(isinstance(a, str) for a in driver):
        raise ManifestError(f"{path}: `driver` must be a non-empty list of strings")
    known = {"name", "language", "client", "install", "driver", "timeout_s", "install_timeout_s"}
    return Client(
        name=folder.name,
        folder=folder,
        language=str(need("language", str)),
        client=str(need("client", str)),
        install=install,
        driver=driver,
        timeout_s=float(data.get("timeout_s", DEFAULT_TIMEOUT_S)),
        install_timeout_s=float(data.get("install_timeout_s", DEFAULT_INSTALL_TIMEOUT_S)),
        extra={k: v for k, v in data.items() if k not in known},
    )


def discover(compat_dir: Path, names: list[str] | None = None) -> list[Client]:
    """The clients named (in the order given), or every client folder in report order.

    Only the named folders' manifests are read, so a client being written elsewhere in
    compat/ does not stop a run of the others. An unknown name raises ValueError.
    """
    if names:
        unknown = [n for n in names if not (compat_dir / n / "client.json").is_file()]
        if unknown:
            known = sorted(p.parent.name for p in compat_dir.glob("*/client.json"))
            raise ValueError(f"unknown client(s) {', '.join(unknown)}; "
                             f"known: {', '.join(known) or 'none'}")
        return [load_client(compat_dir / n) for n in names]
    clients = [load_client(p.parent) for p in sorted(compat_dir.glob("*/client.json"))]

    def rank(client: Client) -> tuple[int, str]:
        lang = client.language.split(" ")[0]  # "Java (CLI)" sorts with Java
        return (LANGUAGE_ORDER.index(lang) if lang in LANGUAGE_ORDER else len(LANGUAGE_ORDER),
                client.name)

    return sorted(clients, key=rank)


def select_scenarios(patterns: list[str] | None) -> list[str]:
    """The columns matching the patterns (ids or shell globs such as `produce-codec-*`).

    Reading a codec needs someone to have written it, so `consume-codec-<codec>` brings in
    `produce-codec-<codec>`. An id or pattern that matches nothing raises ValueError.
    """
    if not patterns:
        return list(SCENARIOS)
    chosen: set[str] = set()
    for pattern in patterns:
        hits = fnmatch.filter(SCENARIOS, pattern)
        if not hits:
            raise ValueError(f"no scenario matches {pattern!r}; known: {', '.join(SCENARIOS)}")
        chosen.update(hits)
    for codec in CODECS:
        if f"consume-codec-{codec}" in chosen:
            chosen.add(f"produce-codec-{codec}")
    return [s for s in SCENARIOS if s in chosen]


def is_produce_codec(scenario: str) -> bool:
    return scenario.startswith("produce-codec-")


def is_consume_codec(scenario: str) -> bool:
    return scenario.startswith("consume-codec-")


def pick_writer(reader: str, codec: str, order: list[str],
                wrote: dict[str, set[str]]) -> str | None:
    """The client whose `produce-codec-<codec>` `reader` reads.

    The previous client in `order` (the first reads the last); when that one did not write
    the codec (it failed, or it cannot), the one before it, and so on around the ring. The
    reader reads its own topic only when no other client wrote the codec; None when no
    client did. `wrote` maps each client to the codecs whose produce scenario passed.
    """
    i = order.index(reader)
    ring = [order[(i - step) % len(order)] for step in range(1, len(order))] + [reader]
    for writer in ring:
        if codec in wrote.get(writer, set()):
            return writer
    return None
