"""Allow-list files: which of a suite's tests must pass, and which are out of scope.

Format (`<suite>/allowlist.txt`), one entry a line, `#` to the end of a line is a comment:

    pass    <test-id>                  expected to pass: anything else is a regression
    exclude <pattern> -- <reason>      out of scope (needs several brokers, SSL/SASL, ACLs,
                                       restarts by its own harness...): deselected where the
                                       suite allows it, and never counted

A test id is the suite's own name for a test (a pytest node id, a librdkafka test name, a Go
test name). An exclude pattern matches a test id when equal to it, when it is a prefix of it
followed by `::`, `/` or `[` (a pytest file or class, a Go subtest, a parametrisation), or
as an `fnmatch` glob. Tests in neither list are in scope and not expected to pass: their
failures are explained in the suite's FINDINGS.md.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path


class AllowListError(ValueError):
    pass


@dataclass
class AllowList:
    passing: set[str] = field(default_factory=set)
    excluded: dict[str, str] = field(default_factory=dict)  # pattern -> reason

    def exclusion(self, test_id: str) -> str | None:
        """The reason `test_id` is out of scope, or None when it is in scope."""
        for pattern, reason in self.excluded.items():
            if (test_id == pattern or fnmatch.fnmatchcase(test_id, pattern)
                    or any(test_id.startswith(pattern + sep) for sep in ("::", "/", "["))):
                return reason
        return None


def parse(text: str, source: str = "allowlist") -> AllowList:
    allow = AllowList()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if kind == "pass" and rest and " " not in rest:
            allow.passing.add(rest)
        elif kind == "exclude" and " -- " in rest:
            pattern, reason = (part.strip() for part in rest.split(" -- ", 1))
            if not pattern or not reason:
                raise AllowListError(f"{source}:{number}: exclude needs a pattern and a reason")
            allow.excluded[pattern] = reason
        else:
            raise AllowListError(f"{source}:{number}: expected 'pass <test-id>' or "
                                 f"'exclude <pattern> -- <reason>', got {raw!r}")
    clash = [t for t in allow.passing if allow.exclusion(t)]
    if clash:
        raise AllowListError(f"{source}: both allowed and excluded: {', '.join(sorted(clash))}")
    return allow


def load(path: Path) -> AllowList:
    return parse(path.read_text(), str(path)) if path.exists() else AllowList()
