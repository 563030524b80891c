"""The broker under test: a fresh `odradek serve` process on a free port, or an external one.

How this works
--------------
`OdradekProcess.start` picks a free port (bind to port 0, note it, close), starts
`odradek serve` with a temporary `log.dirs` and that port as listener and advertised
listener, output to `broker.log`, in its own process group, and waits until a raw
ApiVersions v0 request on the port is answered. If the process exits first (the port was
taken in between, say) it tries again with another port, three times in all. `stop` sends
SIGTERM and waits (SIGKILL after `STOP_GRACE_S`); `health` then says whether the exit
code was 0 and quotes every Python traceback in the log.

`--broker-cmd` replaces the `odradek serve` command: with `{port}` and `{dir}` in it they are
filled in; without, the three `--override` arguments are appended as for `odradek serve`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 60.0
START_ATTEMPTS = 3


REPO = Path(__file__).resolve().parent.parent.parent


def odradek_command() -> list[str]:
    """How to start the broker: the repo venv's `odradek serve`, else `odradek` on PATH,
    else `python -m broker serve`."""
    venv = REPO / ".venv" / "bin" / "odradek"
    if venv.exists():
        return [str(venv), "serve"]
    found = shutil.which("odradek")
    return [found, "serve"] if found else [sys.executable, "-m", "broker", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_versions_answered(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send ApiVersions v0 and check that a response with our correlation id comes back."""
    client_id = b"odradek-compat"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(sock, 8)
    except OSError:
        return False
    return head is not None and struct.unpack(">ii", head)[1] == 7


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def tracebacks(log_text: str, limit: int = 5, lines_each: int = 40) -> list[str]:
    """The Python tracebacks in a log, each from the line before its first `Traceback` line.

    Exception groups print their tracebacks indented behind `|` and `+` margins, so a
    traceback line is found anywhere in a line; a block runs until the next log record (a
    line that starts with neither a space nor a margin character) or a blank line. A long
    block keeps its first lines and its last ones, where the root cause is.
    """
    found: list[str] = []
    lines = log_text.splitlines()
    i = 0
    while i < len(lines) and len(found) < limit:
        if "Traceback (most recent call last)" in lines[i]:
            start = max(0, i - 1)  # the log line that carried the exception
            j = i + 1
            while j < len(lines) and lines[j].strip() and (
                    lines[j][0] in " \t|+" or _is_exception_line(lines[j])):
                j += 1
            block = lines[start:j]
            if len(block) > lines_each:  # keep the top and the root cause at the bottom
                block = [*block[:8], "  [...]", *block[-(lines_each - 8):]]
            found.append("\n".join(block))
            i = j
        i += 1
    return found


def _is_exception_line(line: str) -> bool:
    """`ValueError: ...` or `pkg.Error: ...`: the last line of a traceback."""
    head = line.split(":", 1)[0]
    return bool(head) and " " not in head and (head.endswith(("Error", "Exception", "Group"))
                                               or head in ("KeyboardInterrupt", "SystemExit"))


@dataclass
class BrokerHealth:
    """How the broker ended: its exit code and the tracebacks its log holds."""

    external: bool
    exit_code: int | None = None
    killed: bool = False
    tracebacks: list[str] = field(default_factory=list)
    log_path: str = ""
    died_early: bool = False

    @property
    def ok(self) -> bool:
        return self.external or (self.exit_code == 0 and not self.tracebacks
                                 and not self.killed and not self.died_early)

    def describe(self) -> str:
        if self.external:
            return "external broker (not started or stopped by the runner)"
        parts = []
        if self.died_early:
            parts.append("the broker exited while clients were still running")
        if self.killed:
            parts.append(f"the broker did not stop within {STOP_GRACE_S:.0f} s of SIGTERM "
                         "and was killed")
        parts.append(f"exit code {self.exit_code}")
        parts.append(f"{len(self.tracebacks)} traceback(s) in its log" if self.tracebacks
                     else "no traceback in its log")
        return ", ".join(parts)


class BrokerStartError(Exception):
    pass


class OdradekProcess:
    """A fresh broker in `workdir` (data in `workdir/data`, log in `workdir/broker.log`)."""

    def __init__(self, command: list[str], workdir: Path, cwd: Path,
                 overrides: list[str] | None = None) -> None:
        self.command = command
        self.workdir = workdir
        self.cwd = cwd
        self.overrides = overrides or []
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _argv(self, port: int, data: Path) -> list[str]:
        joined = " ".join(self.command)
        if "{port}" in joined or "{dir}" in joined:
            argv = [a.replace("{port}", str(port)).replace("{dir}", str(data))
                    for a in self.command]
        else:
            argv = [*self.command,
                    "--override", f"log.dirs={data}",
                    "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
                    "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}"]
        for item in self.overrides:
            argv += ["--override", item]
        return argv

    def start(self) -> None:
        last = ""
        for _ in range(START_ATTEMPTS):
            port = free_port()
            data = self.workdir / "data"
            data.mkdir(parents=True, exist_ok=True)
            argv = self._argv(port, data)
            with open(self.log_path, "ab") as log:
                log.write(f"$ {shlex.join(argv)}\n".encode())
                log.flush()
                proc = subprocess.Popen(argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if api_versions_answered("127.0.0.1", port):
                    self.proc, self.port = proc, port
                    return
                time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                last = f"no ApiVersions answer on port {port} within {START_TIMEOUT_S:.0f} s"
            else:
                last = f"exited with code {proc.returncode} before answering"
        raise BrokerStartError(f"the broker did not start ({last}); log: {self.log_path}\n"
                               + tail(self.log_path.read_text(errors="replace"), 20))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> BrokerHealth:
        health = BrokerHealth(external=False, log_path=str(self.log_path))
        if self.proc is None:
            return health
        if self.proc.poll() is not None:
            health.died_early = True
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                health.killed = True
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        health.exit_code = self.proc.returncode
        health.tracebacks = tracebacks(self.log_path.read_text(errors="replace"))
        return health


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
