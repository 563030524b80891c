"""Install a Python client folder's pinned requirements into its own venv, idempotently.

    python compat/runner/pyvenv.py   (run in the client's folder, as its client.json does)

Makes `.venv` in the current directory with the running Python when it is missing, then
`pip install -r requirements.txt` unless `.venv/.requirements-stamp` already holds the
exact text of requirements.txt (so a re-run with unchanged pins takes well under a second).
A venv that cannot run its own Python (moved, or its base interpreter gone) is rebuilt.
Two runs at once (`make test` and `make compat`, say) take turns on `.venv.lock`.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    with open(Path.cwd() / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return install()


def install() -> int:
    folder = Path.cwd()
    venv = folder / ".venv"
    python = venv / "bin" / "python"
    wanted = (folder / "requirements.txt").read_text()
    stamp = venv / ".requirements-stamp"
    if python.exists():
        alive = subprocess.run([str(python), "-c", "pass"], capture_output=True).returncode == 0
        if not alive:
            shutil.rmtree(venv)
    if stamp.exists() and stamp.read_text() == wanted:
        print(f"{venv}: requirements already installed")
        return 0
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", "requirements.txt"], check=True)
    stamp.write_text(wanted)
    print(f"{venv}: installed requirements.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
