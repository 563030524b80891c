#!/bin/sh
# Install @confluentinc/kafka-javascript from package-lock.json, building its native module
# and the librdkafka bundled in the npm package from source; skip when node_modules already
# matches the lock file (a stamp copy of it says so) and the module loads.
#
# The package's install script first tries to download a prebuilt binary from GitHub
# releases, then falls back to node-gyp. Its default source build
# (`configure --install-deps --source-deps-only`) downloads zlib, OpenSSL, zstd and curl
# sources from their upstream sites; CKJS_LINKING=dynamic instead builds the bundled
# librdkafka against the system's libraries, found with pkg-config. So the Debian packages
# of zlib, OpenSSL and zstd headers must be there: installed with apt-get when missing and
# running as root, otherwise named in the error.
set -eu
cd "$(dirname "$0")"
check='const k = require("@confluentinc/kafka-javascript"); for (const f of ["gzip", "snappy", "lz4", "zstd"]) if (!k.features.includes(f)) throw new Error(`librdkafka built without ${f}: ${k.features}`)'
stamp=node_modules/.odradek-installed-lock.json
if cmp -s package-lock.json "$stamp" && node -e "$check" 2>/dev/null; then
    echo "confluent-kafka-javascript: node_modules matches package-lock.json, nothing to install"
    exit 0
fi

debs="zlib1g-dev libssl-dev libzstd-dev pkg-config"
missing=""
for deb in $debs; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing="$missing $deb"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing$missing with apt-get"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    else
        echo "missing Debian packages:$missing (apt-get install$missing)" >&2
        exit 1
    fi
fi

prefix=$(dirname "$(dirname "$(node -p process.execPath)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node.h" ]; then
    export npm_config_nodedir="$prefix"
fi
CKJS_LINKING=dynamic npm ci --no-audit --no-fund
node -e "$check"
cp package-lock.json "$stamp"
