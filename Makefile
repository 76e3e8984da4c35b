# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/deconfound.db
PORT ?= 8501

# the served app runs without a file watcher; `make dev` reloads on every save
SERVE := --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

.PHONY: run dev test bench setup db clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; anything unpinned would pull a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

db: setup
	@test -f $(DB) || $(PY) -m collector init --demo --db $(DB)

run: db
	DECONFOUND_DB=$(DB) $(PY) -m streamlit run app.py $(SERVE) --server.fileWatcherType none

dev: db
	DECONFOUND_DB=$(DB) $(PY) -m streamlit run app.py $(SERVE) --server.runOnSave true \
		--server.folderWatchBlacklist .venv,data

test: db
	$(PY) -m pytest -q

bench: db
	$(PY) collector/benchmarks/speed/bench_serving.py
	$(PY) collector/benchmarks/speed/bench_embeddings.py
	$(PY) collector/benchmarks/speed/bench_training.py
	$(PY) collector/benchmarks/speed/bench_dashboard.py
	$(PY) collector/benchmarks/speed/bench_browser.py

clean:
	rm -rf $(VENV) .pytest_cache
