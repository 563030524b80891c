"""Installing a client and running its driver: the two subprocesses the runner starts per row.

`install` runs the manifest's commands in the client's folder, in order, each under the
manifest's `install_timeout_s` (default 900 s); the first that fails or times out stops the
install, and the report quotes the last lines of its output.

`run_driver` runs `<driver...> --bootstrap HOST:PORT --run-id RID --scenarios a,b,...` under
the manifest's `timeout_s` (and only while the broker lives), reads its stdout line by line
(each result is announced on stderr as it arrives), and keeps the driver's stderr in a log
file. A scenario with no valid result line is a failure: "driver printed no result", with the
exit code or the timeout and the tail of the driver's stderr when it crashed or hung. Lines on
stdout that are not results are ignored (and noted in the log). The driver's process group is
killed on timeout, so a client's helper processes do not outlive it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .catalogue import Client

STATUSES = ("pass", "fail", "n/a")
TAIL_LINES = 15


@dataclass
class Result:
    """One cell: the status, the reason (for fail and n/a) and the driver's timing."""

    status: str
    reason: str = ""
    seconds: float = 0.0
    writer: str = ""  # consume-codec cells: whose topic was read

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"status": self.status, "reason": self.reason,
                                  "seconds": round(self.seconds, 3)}
        if self.writer:
            out["writer"] = self.writer
        return out


_PRINT = threading.Lock()


def progress(message: str) -> None:
    """One progress line on stderr (whole, even with drivers running in threads)."""
    with _PRINT:
        sys.stderr.write(f"[compat] {message}\n")
        sys.stderr.flush()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The runner may itself run inside a venv; a client's own venv must not inherit it.
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               DEBIAN_FRONTEND="noninteractive")
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def install(client: Client, log_dir: Path) -> tuple[bool, str]:
    """Run the install commands; (True, "") or (False, what failed and the output's tail)."""
    log_path = log_dir / f"{client.name}.install.log"
    with open(log_path, "wb") as log:
        for argv in client.install:
            cmd = client.command(argv)
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            started = time.monotonic()
            try:
                proc = subprocess.Popen(cmd, cwd=client.folder, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=_env(), start_new_session=True)
            except OSError as exc:
                return False, f"`{' '.join(argv)}` could not start: {exc}"
            try:
                code = proc.wait(timeout=client.install_timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                log.flush()
                return False, (f"`{' '.join(argv)}` timed out after "
                               f"{client.install_timeout_s:.0f} s\n"
                               + tail(log_path.read_text(errors="replace")))
            log.write(f"(exit {code} after {time.monotonic() - started:.1f} s)\n".encode())
            log.flush()
            if code != 0:
                return False, (f"`{' '.join(argv)}` exited with code {code}\n"
                               + tail(log_path.read_text(errors="replace")))
    return True, ""


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def parse_result(line: str, wanted: set[str]) -> tuple[str, Result] | None:
    """A result line as (scenario, Result), or None when the line is not a valid result."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("scenario") not in wanted:
        return None
    status = data.get("status")
    if status not in STATUSES:
        return None
    reason = data.get("reason") or ""
    seconds = data.get("seconds") or 0.0
    return str(data["scenario"]), Result(
        status=str(status), reason=str(reason),
        seconds=float(seconds) if isinstance(seconds, int | float) else 0.0)


def run_driver(client: Client, bootstrap: str, run_id: str, scenarios: list[str],
               log_dir: Path, phase: str,
               broker_alive: Callable[[], bool] = lambda: True) -> dict[str, Result]:
    """Run the driver for `scenarios`; a result for each one, the missing ones as failures.

    When the broker exits during the run, the driver is stopped at once (its clients would
    only wait out their timeouts) and its remaining scenarios fail with that reason.
    """
    argv = [*client.command(client.driver), "--bootstrap", bootstrap, "--run-id", run_id,
            "--scenarios", ",".join(scenarios)]
    err_path = log_dir / f"{client.name}.{phase}.stderr.log"
    results: dict[str, Result] = {}
    wanted = set(scenarios)
    with open(err_path, "wb") as err:
        err.write(f"$ {' '.join(argv)}\n".encode())
        err.flush()
        try:
            proc = subprocess.Popen(argv, cwd=client.folder, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.DEVNULL, env=_env(),
                                    start_new_session=True)
        except OSError as exc:
            return {s: Result("fail", f"driver could not start: {exc}") for s in scenarios}
        assert proc.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + client.timeout_s
        timed_out = broker_died = False
        while True:
            try:
                raw = lines.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if not broker_alive():
                    broker_died = True
                    _kill_group(proc)
                    break
                if time.monotonic() < deadline:
                    continue
                timed_out = True
                _kill_group(proc)
                break
            if raw is None:
                break
            text = raw.decode(errors="replace").strip()
            parsed = parse_result(text, wanted)
            if parsed is None:
                if text:
                    err.write(f"[runner] ignored stdout line: {text[:500]}\n".encode())
                    err.flush()
                continue
            scenario, result = parsed
            results[scenario] = result
            progress(f"{client.name} {scenario}: {result.status}"
                     + (f" ({result.reason[:200]})" if result.reason else "")
                     + f" {result.seconds:.1f}s")
        if not timed_out:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
    stderr_tail = tail(err_path.read_text(errors="replace"))
    if broker_died:
        why = "the broker exited during the run; the driver was stopped"
    elif timed_out:
        why = f"driver timed out after {client.timeout_s:.0f} s"
    elif proc.returncode != 0:
        why = f"driver crashed (exit code {proc.returncode})"
    else:
        why = ""
    for scenario in scenarios:
        if scenario not in results:
            reason = "driver printed no result"
            if why:
                reason += f"; {why}; stderr tail:\n{stderr_tail}"
            results[scenario] = Result("fail", reason)
            last = reason.splitlines()[-1] if why else ""
            progress(f"{client.name} {scenario}: fail ({reason.splitlines()[0]}"
                     + (f" ... {last[:200]}" if last else "") + ")")
    return results
