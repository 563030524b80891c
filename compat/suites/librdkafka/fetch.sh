#!/usr/bin/env bash
# librdkafka's own test suite (tests/), from Debian's librdkafka source package, built in work/.
#
#   bash compat/suites/librdkafka/fetch.sh        (idempotent: a stamp skips a re-run)
#
# 1. Build dependencies missing from the machine are installed with apt-get (root only):
#    dpkg-dev (dpkg-source), zlib, zstd and OpenSSL headers, and rapidjson-dev (the tests
#    that check statistics JSON need it).
# 2. The source package librdkafka=$DEB_VERSION (the librdkafka of Debian's kcat) is fetched
#    with `apt-get source`, from a deb-src line in a private apt state under work/apt (the
#    machine's own apt configuration is left alone; the index is checked against Debian's
#    archive key), and unpacked with its Debian patches by dpkg-source.
# 3. librdkafka is configured and built, then tests/test-runner against that same build.
# 4. KAFKA_PATH (work/kafka): the few tests that call Kafka's own scripts (kafka-topics.sh,
#    kafka-run-class.sh) get thin wrappers over the Apache Kafka jars of compat/apache-kafka
#    (fetched from Maven Central by its fetch.sh when missing), and tests/java's helper
#    programs are compiled against kafka-clients.
set -euo pipefail
DEB_VERSION=2.0.2-1
UPSTREAM=${DEB_VERSION%-*}
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
work="$here/work"
src="$work/librdkafka-$UPSTREAM"
stamp="$work/.built-$DEB_VERSION"
[[ -f "$stamp" && -x "$src/tests/test-runner" ]] && { echo "librdkafka $DEB_VERSION suite ready"; exit 0; }
mkdir -p "$work"

need=()
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
for pkg in zlib1g-dev libzstd-dev libssl-dev rapidjson-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    else
        echo "missing build dependencies: ${need[*]} (install them with apt-get)" >&2; exit 1
    fi
fi

apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o APT::Sandbox::User=root)
(cd "$work" && apt-get "${apt_opts[@]}" -q update >/dev/null \
    && apt-get "${apt_opts[@]}" -q source --download-only "librdkafka=$DEB_VERSION")
rm -rf "$src"
(cd "$work" && dpkg-source -x "librdkafka_$DEB_VERSION.dsc" "$src")

jobs=$(nproc 2>/dev/null || echo 2)
(cd "$src" && ./configure --prefix="$work/install" >"$work/configure.log" 2>&1 \
    || { tail -30 "$work/configure.log"; exit 1; })
make -C "$src" -j"$jobs" libs >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
make -C "$src/tests" -j"$jobs" build >>"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }

# KAFKA_PATH: Kafka's scripts as the tests call them, over compat/apache-kafka's jars.
jars="$repo/compat/apache-kafka/lib"
ls "$jars"/kafka-clients-*.jar >/dev/null 2>&1 || bash "$repo/compat/apache-kafka/fetch.sh"
kafka="$work/kafka"
mkdir -p "$kafka/bin"
ln -sfn "$jars" "$kafka/libs"
cat >"$kafka/bin/kafka-run-class.sh" <<'SH'
#!/usr/bin/env bash
# kafka-run-class.sh: a Java main class with Kafka's jars (and $CLASSPATH) on the class path.
base="$(cd "$(dirname "$0")/.." && pwd)"
exec java -Xmx256m -Dlog4j2.level=WARN -cp "${CLASSPATH:+$CLASSPATH:}$base/libs/*" "$@"
SH
cat >"$kafka/bin/kafka-topics.sh" <<'SH'
#!/usr/bin/env bash
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
SH
chmod +x "$kafka/bin/"*.sh
(cd "$src/tests/java" && javac -cp "$(ls "$jars"/kafka-clients-*.jar | head -1)" ./*.java)

touch "$stamp"
echo "librdkafka $DEB_VERSION suite ready in $src"
