#!/bin/sh
# kcat from Debian's package (as `make sysdeps` installs it), pinned to the version client.json
# names: installed with apt-get as root when missing; an installed kcat of another version
# fails the install, so the report never names a version that did not run.
set -e
PIN_DEB=1.7.1-2
PIN=1.7.1
if ! command -v kcat >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "kcat is missing: install Debian's package (sudo apt-get install kcat=$PIN_DEB)" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "kcat=$PIN_DEB"
fi
version=$(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p')
if [ "$version" != "$PIN" ]; then
    echo "kcat $version is installed, the matrix pins $PIN (Debian $PIN_DEB)" >&2
    exit 1
fi
echo "kcat $version"
