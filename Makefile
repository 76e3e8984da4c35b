# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/deconfound.db
PORT ?= 8501

.PHONY: run test bench setup db clean

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
	DECONFOUND_DB=$(DB) $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: db
	$(PY) -m pytest -q

bench: db
	$(PY) bench/serving.py
	$(PY) bench/embeddings.py
	$(PY) bench/training.py
	$(PY) bench/dashboard.py

clean:
	rm -rf $(VENV) .pytest_cache
