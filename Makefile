# pyflow: every target installs what it needs first (scripts/bootstrap.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYFLOW_VENV := $(VENV)

.PHONY: install test drill demo bench clean test-fresh demo-fresh

install:
	@bash scripts/bootstrap.sh

# The whole suite. pytest exits 5 when it collected nothing: that is a failure here too.
test: install
	@cd tests && ../$(VENV)/bin/pytest -ra -q --rootdir=.. -c ../pyproject.toml . $(PYTEST_ARGS)

# The reliability drills alone (they run in `make test` too); their figures are printed at the end.
drill: install
	@cd tests && ../$(VENV)/bin/pytest -ra -q --rootdir=.. -c ../pyproject.toml drill $(PYTEST_ARGS)

demo: install
	@$(PY) -m pyflow.demo $(DEMO_ARGS)

# The same, as on a host where pyflow never ran (empty bpffs and /run/pyflow, private mount namespace).
test-fresh demo-fresh:
	@bash scripts/fresh-host.sh $(MAKE) --no-print-directory $(@:-fresh=)

bench: install
	@$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build .mesonpy-* $(VENV)
