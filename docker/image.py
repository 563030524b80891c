"""Build Odradek's container image with docker or podman (`make image`).

    python docker/image.py build [--tag odradek:latest] [--base IMAGE]

Steps:
1. The engine: docker when a docker engine answers (`docker info`), podman otherwise, or
   `ODRADEK_ENGINE`. Podman and its helpers are installed with apt-get when missing (as
   root; otherwise we say what to install), and run with `docker/containers.conf`
   (`CONTAINERS_CONF`) unless the caller set one.
2. The wheels, outside the image: `pip wheel` builds Odradek's (with its optional C
   extension) and `pip download` fetches its dependencies and pip itself into
   `docker/wheels/`, for this machine's platform and Python. The build itself runs without
   network (`--network none`).
3. The base image (`BASE_IMAGE`): the one given; else `python:3.11-slim-bookworm` or the
   local Debian base if either is present; else a pull of the former; else the latter is
   made with `docker/base-image.sh` (debootstrap, installed with apt-get if missing). The
   base's Python must be the wheels' Python (checked before building).
4. `ENGINE build --build-arg BASE_IMAGE=... -f docker/Dockerfile docker/` (podman with
   `--format docker`, so that the HEALTHCHECK is kept).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = ROOT / "docker"
WHEELS = DOCKER_DIR / "wheels"
DEFAULT_TAG = "odradek:latest"
REGISTRY_BASE = "docker.io/library/python:3.11-slim-bookworm"
LOCAL_BASE = "localhost/odradek-base:bookworm"
PODMAN_PACKAGES = ("podman", "buildah", "runc", "uidmap", "slirp4netns", "fuse-overlayfs")


def say(message: str) -> None:
    print(f"[image] {message}", flush=True)


@dataclass
class Engine:
    """A container engine command (`docker` or `podman`) and the environment it runs with."""

    name: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, check: bool = True, capture: bool = False,
            timeout: float | None = None, input: bytes | None = None
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.name, *args], env=self.env, timeout=timeout, check=False,
            capture_output=capture, text=True,
            input=input.decode() if input is not None else None,
        )
        if check and result.returncode != 0:
            detail = f": {result.stderr.strip()}" if capture and result.stderr else ""
            raise SystemExit(f"{self.name} {' '.join(args)} failed "
                             f"(exit {result.returncode}){detail}")
        return result

    def output(self, *args: str, timeout: float | None = 120) -> str:
        return self.run(*args, capture=True, timeout=timeout).stdout.strip()

    def image_exists(self, image: str) -> bool:
        return self.run("image", "inspect", image, check=False, capture=True).returncode == 0


def missing_commands(commands: Sequence[str]) -> list[str]:
    return [c for c in commands if shutil.which(c) is None]


def apt_install(packages: Sequence[str], why: str) -> None:
    """Install Debian packages (as root, with apt-get), or stop saying what to install."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"{why} needs {' '.join(packages)}: install them "
                         f"(Debian/Ubuntu: sudo apt-get install {' '.join(packages)})")
    say(f"installing {' '.join(packages)} with apt-get ({why})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env)


def docker_engine_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def engine() -> Engine:
    """The engine to use: `ODRADEK_ENGINE`, else docker if its engine runs, else podman."""
    name = os.environ.get("ODRADEK_ENGINE") or ("docker" if docker_engine_runs() else "podman")
    if name == "podman":
        helpers = {"podman": "podman", "buildah": "buildah", "runc": "runc",
                   "newuidmap": "uidmap", "slirp4netns": "slirp4netns",
                   "fuse-overlayfs": "fuse-overlayfs"}
        missing = [helpers[c] for c in missing_commands(list(helpers))]
        if missing:
            apt_install(missing, "podman")
    elif shutil.which(name) is None:
        raise SystemExit(f"container engine {name!r} is not installed")
    eng = Engine(name)
    if name == "podman":
        eng.env.setdefault("CONTAINERS_CONF", str(DOCKER_DIR / "containers.conf"))
    return eng


def python_tag(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True).stdout.strip()


def fetch_wheels(python: str = sys.executable) -> list[Path]:
    """Odradek's wheel and every wheel it needs (and pip's), into docker/wheels/."""
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    started = time.monotonic()
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    build = subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(WHEELS), str(ROOT)],
                           capture_output=True, text=True, check=False)
    if build.returncode != 0:
        raise SystemExit(f"pip wheel failed:\n{build.stdout}{build.stderr}")
    own = sorted(WHEELS.glob("odradek-*.whl"))
    if len(own) != 1:
        raise SystemExit(f"expected one odradek wheel in {WHEELS}, found {own}")
    subprocess.run([*pip, "download", "--quiet", "--only-binary=:all:", "-d", str(WHEELS),
                    "pip", str(own[0])], check=True)
    wheels = sorted(WHEELS.glob("*.whl"))
    say(f"{len(wheels)} wheels for Python {python_tag(python)} in {WHEELS.relative_to(ROOT)} "
        f"({time.monotonic() - started:.1f} s)")
    return wheels


def base_python(eng: Engine, base: str) -> str:
    return eng.output("run", "--rm", "--network", "none", "--entrypoint", "python3", base, "-c",
                      "import sys; print('%d.%d' % sys.version_info[:2])")


def ensure_base(eng: Engine, base: str | None) -> str:
    """The base image to build on (see the module docstring), made or pulled if needed."""
    if base:
        if not eng.image_exists(base):
            say(f"pulling {base}")
            eng.run("pull", base)
        return base
    for candidate in (REGISTRY_BASE, LOCAL_BASE):
        if eng.image_exists(candidate):
            return candidate
    say(f"trying to pull {REGISTRY_BASE}")
    try:
        pulled = eng.run("pull", REGISTRY_BASE, check=False, capture=True, timeout=300)
    except subprocess.TimeoutExpired:
        pulled = None
    if pulled is not None and pulled.returncode == 0:
        return REGISTRY_BASE
    say(f"no registry: making {LOCAL_BASE} with debootstrap")
    if missing_commands(["debootstrap"]):
        apt_install(["debootstrap"], "the local base image")
    started = time.monotonic()
    subprocess.run(["sh", str(DOCKER_DIR / "base-image.sh"), eng.name, LOCAL_BASE],
                   env=eng.env, check=True)
    say(f"made {LOCAL_BASE} ({time.monotonic() - started:.0f} s)")
    return LOCAL_BASE


def build(tag: str = DEFAULT_TAG, base: str | None = None, eng: Engine | None = None) -> Engine:
    """Build the image; returns the engine used."""
    eng = eng or engine()
    say(f"engine {eng.name}")
    base = ensure_base(eng, base)
    fetch_wheels()
    have, want = base_python(eng, base), python_tag(sys.executable)
    if have != want:
        raise SystemExit(f"the base image {base} has Python {have} but the wheels are for "
                         f"{want}: build with a Python {have} (make image PYTHON=...) or "
                         f"pick another base (BASE_IMAGE=...)")
    args = ["build", "--network", "none", "--build-arg", f"BASE_IMAGE={base}",
            "-f", str(DOCKER_DIR / "Dockerfile"), "-t", tag]
    if eng.name == "podman":
        args += ["--format", "docker", "--layers"]
    started = time.monotonic()
    eng.run(*args, str(DOCKER_DIR))
    size = eng.output("image", "inspect", "--format", "{{.Size}}", tag)
    say(f"built {tag} on {base} in {time.monotonic() - started:.1f} s, "
        f"{int(size) / 1e6:.0f} MB")
    return eng


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Odradek's container image.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--tag", default=DEFAULT_TAG)
    b.add_argument("--base", default=os.environ.get("BASE_IMAGE") or None,
                   help="base image (default: see docker/image.py)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.tag, args.base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
