#!/usr/bin/env bash
# Install step of client.json: build the driver with Maven (JDK 17+, Maven 3.8+).
# Idempotent: does nothing when target/ is newer than pom.xml and every source file. Tries the
# local Maven repository first (-o, no network) and goes to Maven Central only when it lacks
# something, so a re-run is quiet and quick.
set -euo pipefail
cd "$(dirname "$0")"
stamp=target/.built
if [[ -f "$stamp" && -z "$(find pom.xml src -newer "$stamp" -print -quit)" ]]; then
    exit 0
fi
rm -f "$stamp"
if ! mvn -q -B -o -Dstyle.color=never package >/dev/null 2>&1; then
    mvn -q -B -Dstyle.color=never package
fi
touch "$stamp"
