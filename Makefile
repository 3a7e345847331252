# Two commands do all setup on a fresh machine (Python 3.11+):
#   make run   - create .venv, install nof0, start (embedded) servers, migrate, serve
#   make test  - create .venv, install nof0 with test extras, run the test suite
#   make test-browser - the dashboard in headless Chromium (Debian's chromium package + playwright)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

BROWSER_STAMP := $(VENV)/.browser-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-browser bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/nof0 run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the playwright package drives the machine's chromium (never `playwright install`: no browser download)
$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,browser]'
	rm -f $(VENV)/.browser-* && touch $(BROWSER_STAMP)

test-browser: $(BROWSER_STAMP)
	@test -x $(CHROMIUM) || { echo "make test-browser needs $(CHROMIUM): apt-get install -y chromium" >&2; exit 1; }
	NOF0_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests_browser $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var
