# FineFocus: `make run` and `make test` set everything up themselves.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench clean deps bundle

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

# The desktop bundle: a PyInstaller one-folder app (packaging/finefocus.spec) in packaging/dist/finefocus/,
# checked by its own --self-test. Desktop entry and icon: resources/finefocus.desktop, resources/icons/.
bundle: setup
	$(PY) -m pip install --quiet pyinstaller==6.22.3
	$(VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath packaging/dist --workpath packaging/build packaging/finefocus.spec
	packaging/dist/finefocus/finefocus --self-test
	@du -sh packaging/dist/finefocus

# The system libraries of Qt's xcb platform plugin (Debian/Ubuntu), which the PySide6 wheel does
# not bundle; app/system_check.py names the same list (XCB_LIBRARIES) when one is missing.
XCB_DEPS := libxcb1 libx11-6 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
	libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 \
	libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon0 libxkbcommon-x11-0 libgl1 libegl1 \
	libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)

deps:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y --no-install-recommends $(XCB_DEPS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
