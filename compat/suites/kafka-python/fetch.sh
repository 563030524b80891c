#!/usr/bin/env bash
# kafka-python's own integration tests, from its PyPI source distribution, in work/.
#
#   bash compat/suites/kafka-python/fetch.sh        (idempotent: a stamp skips a re-run)
#
# 1. `pip download --no-binary :all:` fetches the pinned sdist (the wheel has no tests).
# 2. It is unpacked into work/kafka_python-<ver>/ and installed, with the pinned test
#    dependencies, into its own venv work/.venv (the package under test is the sdist's).
# 3. Two files the sdist lacks are added: test/__init__.py (without it `test` resolves to
#    CPython's own `test` package) and test/service.py (service_shim.py: the external-broker
#    placeholder the fixtures import; the sdist omits the module).
set -euo pipefail
VERSION=3.0.12
here="$(cd "$(dirname "$0")" && pwd)"
work="$here/work"
src="$work/kafka_python-$VERSION"
stamp="$work/.fetched-$VERSION"
python="${PYTHON:-python3}"
[[ -f "$stamp" && -x "$work/.venv/bin/python" ]] && { echo "kafka-python $VERSION suite ready"; exit 0; }
mkdir -p "$work"
"$python" -m venv "$work/.venv"
pip=("$work/.venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" download --no-binary :all: --no-deps "kafka-python==$VERSION" -d "$work/dist"
rm -rf "$src"
tar -xzf "$work/dist/kafka_python-$VERSION.tar.gz" -C "$work"
"${pip[@]}" install "$work/dist/kafka_python-$VERSION.tar.gz" -r "$here/requirements.txt"
touch "$src/test/__init__.py"
cp "$here/service_shim.py" "$src/test/service.py"
mkdir -p "$work/kafka-root"   # KAFKA_ROOT: the fixtures check that it exists, nothing more
touch "$stamp"
echo "kafka-python $VERSION suite ready in $src"
