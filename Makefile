# Two commands on a fresh machine: `make run` serves the bundled example, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-go test-go-client test-go-flagd test-java test-ts test-rust test-flagd-java go-plugins postgres lint lock proto bench fuzz clean

# Every Python package, build tools included, comes from requirements.lock at its pinned version and
# hash: a release published yesterday never reaches `make run`, `make test` or CI. The package itself
# is installed without its (open) dependency ranges, which stay for people using it as a library.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The one command that refreshes requirements.lock (newest versions within pyproject.toml's ranges).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" --quiet -o requirements.lock

# Go never downloads a toolchain (GOTOOLCHAIN=local) and takes modules only as go.sum pins them
# (-mod=readonly), from the Go module proxy.
GO         ?= go
GO_ENV     := GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
# Defined before the rules that list it: make expands prerequisites as it reads them.
GO_PLUGINS := .tools/bin/.installed

# The Node OpenFeature client used by tests/flagd (versions pinned by its package-lock.json).
NODE_CLIENT := tests/flagd/node
NODE_STAMP  := $(NODE_CLIENT)/node_modules/.installed

$(NODE_STAMP): $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The TypeScript client (clients/typescript): its dependencies, tsc and ts-proto (buf.gen.yaml's
# plugin) among them, as its package-lock.json pins them. None needs an install script to run.
TS_CLIENT := clients/typescript
TS_STAMP  := $(TS_CLIENT)/node_modules/.installed

$(TS_STAMP): $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --ignore-scripts
	touch $(TS_STAMP)

run: $(STAMP)
	$(BIN)/flag-sidecar serve --flags examples/flags.yaml --listen 127.0.0.1:50051

# pytest-xdist spreads the suite over PYTEST_WORKERS processes, a test file per worker at a time
# (--dist loadfile keeps a file's module and session fixtures, the Kafka broker among them, in one
# process). Most tests wait on real servers and subprocesses rather than compute, so three workers
# on two cores take well under half the time of one. PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 3

test: $(STAMP) $(NODE_STAMP) $(TS_STAMP) $(GO_PLUGINS) postgres
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile
	$(MAKE) --no-print-directory test-go-client
	$(MAKE) --no-print-directory test-java
	$(MAKE) --no-print-directory test-ts
	$(MAKE) --no-print-directory test-rust
	$(MAKE) --no-print-directory test-cpp

# Debian's PostgreSQL server binaries for tests/admin/test_postgresql.py, installed when missing
# (the tests start and stop their own server in a temporary directory; nothing is left running).
postgres:
	@if ! command -v pg_ctl >/dev/null && [ -z "$$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null)" ]; then \
		echo "installing Debian's postgresql for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	fi

# Every Go part: the Go client's tests and the Go flagd provider's (`make test` runs the second
# with the rest of pytest).
test-go: test-go-client test-go-flagd

# The Go client's tests (clients/go), the conformance suite among them, against a real sidecar
# from .venv. -count=1: the sidecar is outside what Go's test cache can see.
test-go-client: $(STAMP)
	cd clients/go && $(GO_ENV) $(GO) test -count=1 ./...

# OpenFeature's Go flagd provider in in-process mode and in RPC mode (--flagd-connect-listen)
# against a real sidecar (tests/flagd/go, built by the tests with go.sum's modules).
test-go-flagd: $(STAMP)
	$(BIN)/pytest -q tests/flagd/test_in_process.py tests/flagd/test_clients.py -k go

# The Java client's tests (clients/java), the conformance suite among them, against a real sidecar
# from .venv. Maven takes every artifact at the version pom.xml pins, from Maven Central; the
# stubs are generated from proto/ in the build, and only again when proto/ changes.
MVN ?= mvn

test-java: $(STAMP)
	cd clients/java && $(MVN) -B -q test

# The TypeScript client's tests (clients/typescript), the conformance suite among them, against a
# real sidecar from .venv: one strict tsc build of the package, its tests and the docs example into
# a fresh dist/ (no compiled test of a removed file lingers), then Node's test runner.
test-ts: $(STAMP) $(TS_STAMP)
	cd $(TS_CLIENT) && rm -rf dist && node_modules/.bin/tsc -p . && node --test --test-concurrency=3 --test-reporter=spec dist/test/*.test.js

# The Rust client's tests (clients/rust), the conformance suite among them, against a real sidecar
# from .venv. Crates come only as Cargo.lock pins them (--locked). The build directory is outside
# the clone, so that a fresh clone on a machine that built it before compiles only the crate
# itself, not tonic and its dependencies again; CARGO_TARGET_DIR chooses another.
CARGO            ?= cargo
CARGO_TARGET_DIR ?= $(HOME)/.cache/flag-sidecar/cargo-target
RUST_ENV         := CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)

test-rust: $(STAMP)
	cd clients/rust && $(RUST_ENV) $(CARGO) test --locked

# The Java OpenFeature flagd provider's tests alone (tests/flagd/java, RPC and in-process, against a
# real sidecar); the Maven build happens once, in the tests (tests/flagd/java_client.py).
test-flagd-java: $(STAMP)
	$(BIN)/pytest -q tests/flagd -k java

# The C++ client's tests (clients/cpp: its own Makefile builds with Debian's grpc++, generating
# the code from proto/ first), the conformance suite among them, against a real sidecar from .venv.
.PHONY: test-cpp cpp-deps clean-cpp
test-cpp: $(STAMP) cpp-deps
	$(MAKE) --no-print-directory -C clients/cpp -j2 test

# Debian's packages for clients/cpp, installed when missing (as the postgres target does):
# grpc++ 1.51 and protobuf 3.21 with their code generators, nlohmann-json, libmurmurhash (the
# client's Bucket), GoogleTest, and ccache, which makes a fresh clone's build cheap.
CPP_PACKAGES := g++ make pkg-config ccache protobuf-compiler protobuf-compiler-grpc libgrpc++-dev \
	libprotobuf-dev nlohmann-json3-dev libmurmurhash-dev libgtest-dev
cpp-deps:
	@if ! ( command -v g++ && command -v pkg-config && command -v ccache && command -v grpc_cpp_plugin && \
		command -v protoc && cd /usr/include && test -f grpcpp/grpcpp.h -a -f google/protobuf/message.h \
		-a -f nlohmann/json.hpp -a -f murmurhash.h -a -f gtest/gtest.h ) >/dev/null 2>&1; then \
		echo "installing Debian's packages for the C++ client"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CPP_PACKAGES); \
	fi

clean: clean-cpp
clean-cpp:
	rm -rf clients/cpp/build

# protoc-gen-go and protoc-gen-go-grpc for buf.gen.yaml, at the versions of tools/go-plugins/go.mod.
go-plugins: $(GO_PLUGINS)

$(GO_PLUGINS): tools/go-plugins/go.mod tools/go-plugins/go.sum
	cd tools/go-plugins && $(GO_ENV) GOBIN=$(CURDIR)/.tools/bin $(GO) install tool
	touch $@

# The fuzz suite that `make test` runs (tests/fuzz, 3000 cases) with ten times the cases; FUZZ_SEED
# picks other ones (the same seed and count always give the same cases).
FUZZ_CASES ?= 30000

fuzz: $(STAMP)
	FUZZ_CASES=$(FUZZ_CASES) $(BIN)/pytest -q tests/fuzz

# Style, types ([tool.mypy]), the layer contracts ([tool.importlinter]) and the proto contract:
# buf lint, and buf breaking against proto/ before its last change (tools/proto_breaking.py);
# gofmt and go vet on the Go client and the Go flagd test client; prettier and tsc's strict type
# check on the TypeScript client; rustfmt and clippy on the Rust client.
lint: $(STAMP) $(TS_STAMP)
	$(BIN)/ruff check sidecar tests tools bench clients/python
	$(BIN)/ruff format --check sidecar tests tools bench clients/python
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	cd proto && ../$(BIN)/buf lint
	@unformatted="$$(gofmt -l clients/go tests/flagd/go)"; test -z "$$unformatted" || { echo "gofmt: $$unformatted"; exit 1; }
	cd clients/go && $(GO_ENV) $(GO) vet ./...
	cd tests/flagd/go && $(GO_ENV) $(GO) vet ./...
	cd $(TS_CLIENT) && node_modules/.bin/prettier --check --log-level warn . && node_modules/.bin/tsc -p . --noEmit
	cd clients/rust && $(CARGO) fmt --check
	cd clients/rust && $(RUST_ENV) $(CARGO) clippy --locked --all-targets --quiet -- -D warnings
	$(BIN)/python tools/proto_breaking.py

# The benchmark suite (not part of `make test` or CI): writes BENCHMARKS.md, 10-17 minutes.
# BENCH_BEFORE is the revision whose sidecar/ is measured as "before" in the same run: the one the
# foundation issue's start-up work is measured against. Servers and load generators are pinned to
# a core each (--pin-cpus), as in the committed report.
BENCH_BEFORE ?= a618cb3

bench: $(STAMP)
	$(BIN)/python -m bench.run --before $(BENCH_BEFORE) --pin-cpus

# Regenerate the committed protobuf code after editing proto/: Python (flagsidecar/, flagd/), Go
# (clients/go/gen) and TypeScript (clients/typescript/src/gen), these two by buf generate with
# buf.gen.yaml's local plugins.
proto: $(STAMP) $(GO_PLUGINS) $(TS_STAMP)
	$(BIN)/python tools/gen_proto.py
	$(BIN)/buf generate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info $(NODE_CLIENT)/node_modules $(TS_CLIENT)/node_modules $(TS_CLIENT)/dist .tools clients/java/target clients/rust/target tests/flagd/java/target
