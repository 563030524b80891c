#!/bin/sh
# Install the pinned client from package-lock.json (npm ci), unless node_modules already
# holds exactly that lock file's packages (a stamp copy of the lock file says so).
# Native codec modules (lz4, zstd-napi) compile with node-gyp against this Node's own
# headers when the machine's Node ships them (Debian's nodejs does, under /usr/include/node),
# so nothing is downloaded but the npm packages.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.odradek-installed-lock.json
if cmp -s package-lock.json "$stamp" && node -e 'require("kafkajs"); require("kafkajs-lz4"); require("zstd-napi")' 2>/dev/null; then
    echo "kafkajs: node_modules matches package-lock.json, nothing to install"
    exit 0
fi
prefix=$(dirname "$(dirname "$(node -p process.execPath)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node.h" ]; then
    export npm_config_nodedir="$prefix"
fi
npm ci --no-audit --no-fund
node -e 'require("kafkajs"); require("kafkajs-lz4"); require("zstd-napi")'
cp package-lock.json "$stamp"
