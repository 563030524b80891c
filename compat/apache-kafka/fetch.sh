#!/usr/bin/env bash
# Copy Apache Kafka (see pom.xml for the version) and its runtime jars from Maven Central into
# lib/. Idempotent: does nothing when the broker jar is already there. Needs mvn and a JDK 17+.
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' pom.xml)
if [[ -f "lib/kafka_2.13-${version}.jar" ]]; then
    exit 0
fi
rm -rf lib
mvn -q -B dependency:copy-dependencies
echo "Apache Kafka ${version}: $(ls lib | wc -l) jars in $(pwd)/lib"
