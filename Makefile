# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/deconfound.db
PORT ?= 8501

# the served app runs without a file watcher; `make dev` reloads on every save
SERVE := --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

.PHONY: run dev test lint bench plan-check setup db clean

# the venv, torch first (pinned CPU wheel), then the packages in editable mode with their
# dependencies and the test tools (pyproject.toml); redone when either file changes
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

# DoWhy and EconML for the effects recipe's test (docs/recipes/dowhy_econml.py): they pin an older
# SciPy than the app's, so they live in an environment of their own
CAUSAL_VENV := .venv-causal
$(CAUSAL_VENV)/.installed:
	$(PYTHON) -m venv $(CAUSAL_VENV)
	$(CAUSAL_VENV)/bin/python -m pip install -q dowhy==0.14 econml==0.17 pyarrow
	touch $@

db: setup
	@test -f $(DB) || $(PY) -m collector init --demo --db $(DB)

run: db
	DECONFOUND_DB=$(DB) $(PY) -m collector.app.serve $(SERVE) --server.fileWatcherType none

dev: db
	DECONFOUND_DB=$(DB) $(PY) -m streamlit run app.py $(SERVE) --server.runOnSave true \
		--server.folderWatchBlacklist .venv,data

# layers import one way, the code is clean and typed, then every test
lint: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: db lint $(CAUSAL_VENV)/.installed
	DECONFOUND_CAUSAL_PYTHON=$(CAUSAL_VENV)/bin/python $(PY) -m pytest -q

# every speed benchmark prints its figures beside their targets and exits 1 on a miss; all of them
# run, then one line says what held (exit 1 if anything missed or a benchmark measured nothing)
BENCHES := serving rebuild scale embeddings embeddings-backends import export snapshot boot training dashboard browser
BENCH_RESULTS := data/bench/results.jsonl
bench: db
	@mkdir -p data/bench && rm -f $(BENCH_RESULTS)
	@for b in $(BENCHES); do \
		echo "== bench_$$b"; \
		case $$b in embeddings-backends) m=bench_embeddings; a=--backends;; *) m=bench_$$b; a=;; esac; \
		DECONFOUND_BENCH_RESULTS=$(BENCH_RESULTS) $(PY) -m collector.benchmarks.speed.$$m $$a || true; \
	done
	@$(PY) -m collector.benchmarks.speed.targets $(BENCH_RESULTS) $(BENCHES)

# the planner checked through simulate: the realised power at the planned size (target 75-85%)
plan-check: db
	$(PY) -m collector.benchmarks.plan_check

clean:
	rm -rf $(VENV) $(CAUSAL_VENV) .pytest_cache .mypy_cache .ruff_cache
