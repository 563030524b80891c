"""compat/suites/harness: allow-lists, the suites' result files, and the verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "suites"))

from harness import allowlist, results  # noqa: E402
from harness.results import Outcome  # noqa: E402

ALLOW = """\
# comment
pass test/a.py::test_one
pass test/a.py::test_two[gzip]   # trailing comment
exclude test/ssl.py -- SSL: own broker
exclude TestSCRAM* -- SASL
"""


def test_allowlist_parses_passes_and_exclusions() -> None:
    allow = allowlist.parse(ALLOW)
    assert allow.passing == {"test/a.py::test_one", "test/a.py::test_two[gzip]"}
    assert allow.exclusion("test/ssl.py::TestSSL::test_handshake") == "SSL: own broker"
    assert allow.exclusion("test/ssl.py") == "SSL: own broker"
    assert allow.exclusion("test/ssl.pyx::t") is None
    assert allow.exclusion("TestSCRAMAuthBadCredentials") == "SASL"
    assert allow.exclusion("test/a.py::test_one") is None


@pytest.mark.parametrize("line", ["pass", "pass a b", "exclude x", "exclude x --  ",
                                  "maybe x"])
def test_allowlist_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(allowlist.AllowListError):
        allowlist.parse(line)


def test_allowlist_rejects_a_test_both_allowed_and_excluded() -> None:
    with pytest.raises(allowlist.AllowListError, match="both"):
        allowlist.parse("pass t/x.py::a\nexclude t/x.py -- out\n")


def test_judge_regressions_newly_passing_and_scope() -> None:
    allow = allowlist.parse(ALLOW + "pass test/a.py::test_gone\npass test/a.py::test_skip\n")
    outcomes = {
        "test/a.py::test_one": Outcome("fail", "boom"),      # allow-listed: regression
        "test/a.py::test_two[gzip]": Outcome("pass"),
        "test/a.py::test_new": Outcome("pass"),               # not listed: newly passing
        "test/a.py::test_skip": Outcome("skip", "version"),   # a skip is not a pass
        "test/ssl.py::test_x": Outcome("fail"),               # excluded: never counted
    }
    v = results.judge(outcomes, allow)
    assert v.passed == ["test/a.py::test_new", "test/a.py::test_two[gzip]"]
    assert v.failed == ["test/a.py::test_one"]
    assert v.skipped == ["test/a.py::test_skip"]
    assert v.excluded == ["test/ssl.py::test_x"]
    assert v.regressions == ["test/a.py::test_gone", "test/a.py::test_one",
                             "test/a.py::test_skip"]
    assert v.newly_passing == ["test/a.py::test_new"]
    assert v.in_scope == 3 and v.pass_rate == pytest.approx(2 / 3)


def test_read_junit_builds_pytest_node_ids(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="test.integration.test_p" file="test/integration/test_p.py" '
        'name="test_e2e[lz4]" time="1.5"/>'
        '<testcase classname="test.integration.test_s.TestSSL" '
        'file="test/integration/test_s.py" name="test_h" time="0">'
        '<failure message="assert 1 == 2">trace</failure></testcase>'
        '<testcase classname="test.integration.test_p" file="test/integration/test_p.py" '
        'name="test_old" time="0"><skipped message="Requires KAFKA_VERSION &lt; 0.10.1"/>'
        '</testcase></testsuite></testsuites>')
    got = results.read_junit(xml)
    assert got["test/integration/test_p.py::test_e2e[lz4]"] == Outcome("pass", "", 1.5)
    assert got["test/integration/test_s.py::TestSSL::test_h"].status == "fail"
    assert got["test/integration/test_s.py::TestSSL::test_h"].message == "assert 1 == 2"
    assert got["test/integration/test_p.py::test_old"].status == "skip"


def test_read_librdkafka_drops_filtered_tests_and_main(tmp_path: Path) -> None:
    report = tmp_path / "test_report_1.json"
    report.write_text(json.dumps({"tests": {
        "<MAIN>": {"state": "PASSED"},
        "0004_conf": {"state": "SKIPPED", "extra": "", "duration": 0.0},
        "0012_produce_consume": {"state": "PASSED", "duration": 2.5},
        "0053_stats": {"state": "SKIPPED", "extra": "RapidJSON >=1.1.0 not available"},
        "0081_admin": {"state": "FAILED", "extra": ""},
        "0092_mixed": {"state": "FAILED", "extra": "assertion"},
        "0091_max_poll": {"state": "RUNNING"},
    }}))
    output = ('\x1b[31m### Test "0081_admin (do_test_CreateTopics:74: x)" failed at '
              '0081-admin.c:232:do_test_CreateTopics() at Wed: ###\n'
              'Expected INVALID_CONFIG, not 0: NO_ERROR\x1b[0m\n'
              '### Test "0081_admin" failed at test.c:1:later() at Wed: ###\nsecond\n')
    got = results.read_librdkafka(report, output)
    assert set(got) == {"0012_produce_consume", "0053_stats", "0081_admin", "0092_mixed",
                        "0091_max_poll"}
    assert got["0012_produce_consume"] == Outcome("pass", "", 2.5)
    assert got["0053_stats"].status == "skip"
    assert got["0081_admin"] == Outcome(
        "fail", "0081-admin.c:232:do_test_CreateTopics() Expected INVALID_CONFIG, not 0: "
        "NO_ERROR", 0.0)
    assert got["0092_mixed"].message == "assertion"
    assert got["0091_max_poll"].status == "fail"


def test_read_go_json_top_level_tests_and_unfinished_ones(tmp_path: Path) -> None:
    events = [
        {"Action": "run", "Test": "TestA"},
        {"Action": "output", "Test": "TestA", "Output": "    a_test.go:9: bad offset\n"},
        {"Action": "output", "Test": "TestA",
         "Output": "    a_test.go:30: FAILED TESTING -- NOT DELETING TOPIC t1\n"},
        {"Action": "run", "Test": "TestA/sub"},
        {"Action": "fail", "Test": "TestA/sub", "Elapsed": 0.1},
        {"Action": "fail", "Test": "TestA", "Elapsed": 0.2},
        {"Action": "run", "Test": "TestB"},
        {"Action": "pass", "Test": "TestB", "Elapsed": 3},
        {"Action": "run", "Test": "TestHung"},
        {"Action": "skip", "Test": "TestS", "Elapsed": 0},
    ]
    path = tmp_path / "go.json"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    got = results.read_go_json(path)
    assert got["TestA"] == Outcome("fail", "a_test.go:9: bad offset", 0.2)
    assert got["TestB"] == Outcome("pass", "", 3.0)
    assert got["TestHung"].status == "fail"
    assert got["TestS"].status == "skip"
    assert "TestA/sub" not in got
