#!/usr/bin/env bash
# franz-go's kgo integration tests, from the Go module proxy, compiled in work/.
#
#   bash compat/suites/franz-go/fetch.sh        (idempotent: a stamp skips a re-run)
#
# `go mod download` fetches the pinned module (checked against sum.golang.org); its read-only
# copy in the module cache is copied to work/franz-go, whose own go.mod pins the test
# dependencies, and pkg/kgo's tests are compiled into work/kgo.test (run from pkg/kgo).
set -euo pipefail
VERSION=v1.22.3
here="$(cd "$(dirname "$0")" && pwd)"
work="$here/work"
src="$work/franz-go"
stamp="$work/.built-$VERSION"
[[ -f "$stamp" && -x "$work/kgo.test" ]] && { echo "franz-go $VERSION suite ready"; exit 0; }
mkdir -p "$work"
dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/twmb/franz-go@$VERSION" \
       | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
[[ -d "$dir" ]] || { echo "go mod download gave no module directory" >&2; exit 1; }
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
(cd "$src" && go mod download && go test -c -o "$work/kgo.test" ./pkg/kgo)
touch "$stamp"
echo "franz-go $VERSION suite ready in $src"
