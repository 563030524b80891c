#!/usr/bin/env bash
# Apache Kafka as a reference broker (single-node KRaft). Thin wrapper over apache_kafka.py:
#   run.sh serve --port 9092 [--advertise HOST:PORT] [--dir DIR] [--set key=value]...
#   run.sh dump FILE... [--shallow] [extra DumpLogSegments flags]
#   run.sh fetch
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${here}/../../.venv/bin/python"
[[ -x "$py" ]] || py=python3
exec "$py" "${here}/apache_kafka.py" "$@"
