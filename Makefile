# Two commands on a fresh machine: `make demo` runs the product, `make test` runs the tests.
# Each installs what it needs: Debian packages through apt-get (when root), Python packages
# into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_PORT ?= 8080

.PHONY: demo test test-fast lint bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Debian packages: the broker and its clients; promtool and the Prometheus server (metrics
# tests); Chromium, driven by Playwright for the web pages' tests.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v mosquitto_pub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

# Every test starts its own broker, engine and store on free ports, so they run in parallel
# (TEST_WORKERS processes). pytest exits 5 when it collects no test: make fails on it too.
TEST_WORKERS ?= 4

test: system-deps lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

# The code's upkeep: lint, formatting, types (docs/architecture.md).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast: lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "not slow"

demo: system-deps $(STAMP)
	$(PY) -m queue_engine.demo --config examples/demo-site.toml --http-port $(DEMO_PORT)

bench: system-deps $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/latency.py

clean:
	rm -rf $(VENV) var
