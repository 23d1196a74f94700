# Two commands on a fresh machine: `make run` serves the bundled example, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint proto bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,parquet]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flag-sidecar serve --flags examples/flags.yaml --listen 127.0.0.1:50051

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sidecar tests tools
	$(BIN)/ruff format --check sidecar tests tools
	cd proto && ../$(BIN)/buf lint

# Regenerate the committed protobuf code after editing proto/.
proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
