# Odradek: set-up, run and test. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install sysdeps run test test-all lint codegen bench clean

$(STAMP): pyproject.toml protocol/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# bytecode ahead of time: start-up then imports instead of compiling (~0.5 s)
	$(PY) -m compileall -q broker protocol storage >/dev/null
	touch $(STAMP)

install: $(STAMP)

# System packages the tests use: kcat (and python3-venv, which Debian ships apart).
# Idempotent: installs with apt-get only what is missing, and only as root; otherwise says
# what to install. Tests that need kcat fail under CI (CI=1, as .ci/run sets) without it.
SYSDEPS_MISSING = $(strip $(if $(shell command -v kcat 2>/dev/null),,kcat) \
	$(if $(shell $(PYTHON) -c 'import ensurepip' 2>/dev/null && echo ok),,python3-venv))
sysdeps:
	@if [ -z "$(SYSDEPS_MISSING)" ]; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(SYSDEPS_MISSING) with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSDEPS_MISSING); \
	else \
		echo "missing system packages: $(SYSDEPS_MISSING)." \
		     "Install them (Debian/Ubuntu: sudo apt-get install $(SYSDEPS_MISSING));" \
		     "tests that need kcat fail under CI and are skipped elsewhere." >&2; \
	fi

# Start the broker on localhost:9092 with its data in ./data.
run: $(STAMP)
	$(VENV)/bin/odradek serve --override log.dirs=$(CURDIR)/data

# The test suite that CI runs (slow-marked tests excluded).
test: sysdeps $(STAMP)
	$(PY) -m pytest

# Everything, including slow-marked tests (large fuzzing budgets).
test-all: sysdeps $(STAMP)
	$(PY) -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check broker protocol storage tests bench
	$(VENV)/bin/mypy

# Regenerate protocol/messages from ../shared/kafka-protocol.
codegen: $(STAMP)
	$(PY) -m protocol.codegen

# The benchmark comparison (bench/run.py): Odradek, Tansu and Apache Kafka 4.4 (its jars
# fetched with Maven when a JDK and Maven are present) and the machine's limits; writes
# docs/performance.md and docs/performance/. The native load driver, librdkafka's
# rdkafka_performance, is built first from Debian's librdkafka source package into
# bench/.work/ (idempotent; where it cannot be built the run says why and uses the other
# drivers). Options through BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--quick --brokers odradek" (see python bench/run.py --help).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
		bash compat/apache-kafka/fetch.sh; \
	else \
		echo "no JDK or Maven: Apache Kafka will be reported as unavailable" >&2; \
	fi
	-$(PY) bench/suite/rdkafka_perf.py build
	$(PY) bench/run.py $(BENCH_ARGS)

# The client compatibility matrix (compat/): a fresh broker, every client of compat/*/client.json
# installed from its registry and run; writes compat/REPORT.md and compat/report.json.
.PHONY: compat
compat: sysdeps $(STAMP)
	@# the Go drivers' shared kit has unit tests of its own
	cd compat/gokit && go test ./...
	$(PY) compat/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache

# The container image (docker/): docker where a docker engine runs, podman otherwise
# (installed with apt-get as root when missing). BASE_IMAGE picks the base; without it a
# local Debian base is made with debootstrap when no registry is reachable.
IMAGE ?= odradek:latest
.PHONY: image image-test
image: $(STAMP)
	$(PY) docker/image.py build --tag $(IMAGE) $(if $(BASE_IMAGE),--base $(BASE_IMAGE))

# Build the image, then run it: produce and consume through the published port, restart,
# a new container on the same volume, SIGTERM stops under 5 s, and compose.yaml.
image-test: $(STAMP)
	$(PY) docker/image_test.py --tag $(IMAGE) $(if $(BASE_IMAGE),--base $(BASE_IMAGE))

# The clients' own test suites (compat/suites/: kafka-python, librdkafka, franz-go), each
# fetched from its registry, built, and run against a fresh broker; then Kafka's verifiable
# producer and consumer across broker restarts (compat/kafka-verifiable/). Writes
# compat/suites/REPORT-suites.md and suites.json; fails on a regression, a lost record or a
# broker that crashed.
.PHONY: compat-suites
compat-suites: sysdeps $(STAMP)
	@mkdir -p compat/suites/work
	$(PY) compat/kafka-verifiable/run.py > compat/suites/work/verifiable.json; v=$$?; \
	$(PY) compat/suites/run.py --verifiable-summary compat/suites/work/verifiable.json; s=$$?; \
	exit $$(( v > s ? v : s ))
