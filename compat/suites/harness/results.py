"""Reading a suite's own result file, and judging the outcomes against its allow-list.

Each reader returns `{test id: Outcome}` with a status of `pass`, `fail` or `skip` (the
suite skipped it itself: a missing tool, a version gate). Tests the suite's selection does
not run at all are left out.

- pytest: the JUnit XML of `--junitxml` with `junit_family=xunit1` (its `file` attribute
  gives the node id: `file::[Class::]name[params]`).
- librdkafka: test-runner's `-r` JSON report, with each failure's message taken from the
  run's output (`### Test "<name>..." failed at <where>: ###` and the line after it). A test
  the run's flags filter out (the broker-less local tests under `-L`, socket-emulation tests
  under `-E`, known issues, other scenarios) is in the report as SKIPPED with no reason and
  no duration: it is left out, and so is the `<MAIN>` pseudo-test. A test that skips itself
  gives its reason.
- Go: `go test -json` / test2json events; top-level tests only (a subtest's failure fails
  its parent). The message is the test's first three log lines, without franz-go's
  clean-up notes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .allowlist import AllowList

MESSAGE_CHARS = 400
# franz-go's test helpers log their clean-up after a failure; the reason comes first.
GO_CLEANUP_NOISE = re.compile(r"FAILED TESTING -- NOT DELETING|deleting topic ")


@dataclass
class Outcome:
    status: str  # pass | fail | skip
    message: str = ""
    seconds: float = 0.0


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def read_junit(path: Path) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    for case in ET.parse(path).iter("testcase"):
        file = case.get("file") or ""
        classname = case.get("classname") or ""
        module = file.removesuffix(".py").replace("/", ".")
        cls = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
        test_id = "::".join(p for p in (file, cls, case.get("name") or "") if p)
        outcome = Outcome("pass", seconds=float(case.get("time") or 0))
        for child in case:
            if child.tag in ("failure", "error"):
                outcome.status = "fail"
                outcome.message = _cut(child.get("message") or child.text or child.tag)
                break
            if child.tag == "skipped":
                outcome.status = "skip"
                outcome.message = _cut(child.get("message") or "")
        results[test_id] = outcome
    return results


def read_librdkafka(path: Path, output: str = "") -> dict[str, Outcome]:
    status = {"PASSED": "pass", "FAILED": "fail", "SKIPPED": "skip"}
    failures = _librdkafka_failures(output)
    results: dict[str, Outcome] = {}
    for name, test in json.loads(path.read_text(errors="replace"))["tests"].items():
        extra = test.get("extra") or ""
        duration = float(test.get("duration") or 0)
        state = status.get(test.get("state", ""), "fail")  # RUNNING etc.: never finished
        if name == "<MAIN>" or (state == "skip" and not extra and not duration):
            continue
        message = extra
        if state == "fail":
            message = failures.get(name) or extra or f"state {test.get('state')}"
        results[name] = Outcome(state, _cut(message), duration)
    return results


def _librdkafka_failures(output: str) -> dict[str, str]:
    """The first failure message of each test in test-runner's output."""
    found: dict[str, str] = {}
    lines = [re.sub(r"\x1b\[[0-9;]*m|\x1b\(B", "", ln) for ln in output.splitlines()]
    for i, line in enumerate(lines):
        match = re.match(r'### Test "([^" ]+)[^"]*" failed at (\S+)', line)
        if match and match.group(1) not in found:
            detail = lines[i + 1] if i + 1 < len(lines) else ""
            found[match.group(1)] = f"{match.group(2)} {detail}".strip()
    return found


def read_go_json(path: Path) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    output: dict[str, list[str]] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = event.get("Test") or ""
        if not test or "/" in test:
            continue
        action = event.get("Action")
        if action == "output":
            output.setdefault(test, []).append(event.get("Output", ""))
        elif action == "run":
            results.setdefault(test, Outcome("fail", "did not finish (killed or timed out)"))
        elif action in ("pass", "fail", "skip"):
            lines = [ln.strip() for ln in output.get(test, [])
                     if ln.strip() and not ln.startswith(("=== ", "--- ", "["))
                     and not GO_CLEANUP_NOISE.search(ln)]
            message = "; ".join(lines[:3]) if action != "pass" else ""
            results[test] = Outcome(action, _cut(message), float(event.get("Elapsed") or 0))
    return results


@dataclass
class Verdict:
    """A suite's outcomes set against its allow-list."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)        # in scope, not passing
    skipped: list[str] = field(default_factory=list)       # skipped by the suite itself
    excluded: list[str] = field(default_factory=list)      # out of scope (allow-list)
    regressions: list[str] = field(default_factory=list)   # allow-listed, did not pass
    newly_passing: list[str] = field(default_factory=list)

    @property
    def in_scope(self) -> int:
        return len(self.passed) + len(self.failed)

    @property
    def pass_rate(self) -> float:
        return len(self.passed) / self.in_scope if self.in_scope else 0.0


def judge(results: dict[str, Outcome], allow: AllowList) -> Verdict:
    verdict = Verdict()
    for test_id, outcome in sorted(results.items()):
        if allow.exclusion(test_id):
            verdict.excluded.append(test_id)
        elif outcome.status == "pass":
            verdict.passed.append(test_id)
            if test_id not in allow.passing:
                verdict.newly_passing.append(test_id)
        elif outcome.status == "skip":
            verdict.skipped.append(test_id)
        else:
            verdict.failed.append(test_id)
    for test_id in sorted(allow.passing):
        if results.get(test_id, Outcome("fail")).status != "pass":
            verdict.regressions.append(test_id)
    return verdict
