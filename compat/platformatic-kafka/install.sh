#!/bin/sh
# Install @platformatic/kafka from package-lock.json (npm ci, pure JavaScript and
# WebAssembly, nothing to compile), unless node_modules already matches the lock file (a
# stamp copy of it says so). npm warns that two of its helper packages ask for Node 22;
# the client runs on Node 20 (its own engines field accepts >= 20.19.4).
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.odradek-installed-lock.json
if cmp -s package-lock.json "$stamp" && node -e 'import("@platformatic/kafka")' 2>/dev/null; then
    echo "platformatic-kafka: node_modules matches package-lock.json, nothing to install"
    exit 0
fi
npm ci --no-audit --no-fund
node -e 'import("@platformatic/kafka")'
cp package-lock.json "$stamp"
