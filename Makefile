# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv on first use and install what they need (torch first, pinned to the CPU wheel).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ibntrack-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[onnx,semantic,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ibntrack demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check ibntrack tests benchmarks scripts

clean:
	rm -rf runs .pytest_cache
