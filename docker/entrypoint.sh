#!/bin/sh
# Odradek's container entrypoint. The broker replaces this shell (exec), so it runs as PID 1
# and gets SIGTERM directly: it stops accepting, finishes in-flight responses, flushes its
# logs and exits 0.
#
#   (no arguments) | serve [ARGS] | --override ...   run the broker (`odradek serve ARGS`)
#   create-topics ARGS                               create topics (create_topics.py --help)
#   healthcheck [HOST:PORT]                          one ApiVersions round trip
#   anything else                                    run that command
#
# Configuration: KAFKA_* environment variables (KAFKA_ADVERTISED_LISTENERS ->
# advertised.listeners, as in Apache Kafka's image), ODRADEK_LOG_LEVEL (default INFO).
set -e
libexec=/opt/odradek/libexec

if [ $# -eq 0 ]; then
    set -- serve
fi
case "$1" in
    -*) set -- serve "$@" ;;
esac

case "$1" in
    serve)
        shift
        for dir in $(echo "${KAFKA_LOG_DIRS:-}" | tr ',' ' '); do
            mkdir -p "$dir" 2>/dev/null || true
            if [ ! -w "$dir" ]; then
                echo "odradek: log dir $dir is not writable by uid $(id -u);" \
                     "chown it to $(id -u):$(id -g) or use a named volume" >&2
                exit 1
            fi
        done
        exec odradek serve --log-level "${ODRADEK_LOG_LEVEL:-INFO}" "$@"
        ;;
    create-topics)
        shift
        exec python "$libexec/create_topics.py" "$@"
        ;;
    healthcheck)
        shift
        exec python "$libexec/healthcheck.py" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
