# Two commands on a fresh machine: `make run` serves the bundled example, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-go test-go-client test-go-flagd go-plugins postgres lint lock proto bench fuzz clean

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

run: $(STAMP)
	$(BIN)/flag-sidecar serve --flags examples/flags.yaml --listen 127.0.0.1:50051

test: $(STAMP) $(NODE_STAMP) $(GO_PLUGINS) postgres
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-go-client

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

# OpenFeature's Go flagd provider in in-process mode against a real sidecar (tests/flagd/go, built
# by the tests with go.sum's modules).
test-go-flagd: $(STAMP)
	$(BIN)/pytest -q tests/flagd/test_in_process.py -k go

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
# gofmt and go vet on the Go client and the Go flagd test client.
lint: $(STAMP)
	$(BIN)/ruff check sidecar tests tools bench clients/python
	$(BIN)/ruff format --check sidecar tests tools bench clients/python
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	cd proto && ../$(BIN)/buf lint
	@unformatted="$$(gofmt -l clients/go tests/flagd/go)"; test -z "$$unformatted" || { echo "gofmt: $$unformatted"; exit 1; }
	cd clients/go && $(GO_ENV) $(GO) vet ./...
	cd tests/flagd/go && $(GO_ENV) $(GO) vet ./...
	$(BIN)/python tools/proto_breaking.py

# The benchmark suite (not part of `make test` or CI): writes BENCHMARKS.md, about 5-10 minutes.
# BENCH_BEFORE is the revision whose sidecar/ is measured as "before the optimisations".
BENCH_BEFORE ?= d3ab468

bench: $(STAMP)
	$(BIN)/python -m bench.run --before $(BENCH_BEFORE)

# Regenerate the committed protobuf code after editing proto/: Python (flagsidecar/, flagd/) and
# Go (clients/go/gen, buf generate with buf.gen.yaml's local plugins).
proto: $(STAMP) $(GO_PLUGINS)
	$(BIN)/python tools/gen_proto.py
	$(BIN)/buf generate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info $(NODE_CLIENT)/node_modules .tools
