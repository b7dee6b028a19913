# FineFocus: `make run` and `make test` set everything up themselves.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build from local disk, never an unpinned resolve.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/finefocus

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_tiles.py --json
	$(PY) benchmarks/bench_phantom.py --json
	$(PY) benchmarks/bench_heatmap.py --json
	$(PY) benchmarks/bench_refocus.py --json
	$(PY) benchmarks/bench_focus_view.py --json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
