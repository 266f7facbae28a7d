# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv on first use and install what they need (torch first, pinned to the CPU wheel,
# so that no multi-GB CUDA build is pulled).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.ibntrack-base
DEV    := $(VENV)/.ibntrack-dev
# real unlabeled pedestrian footage (Debian opencv-doc's vtest.avi) for `ibntrack adapt`'s teacher test
FOOTAGE := .cache/footage/vtest.avi

.PHONY: demo real-demo test lint bench cross-domain real-footage clean

$(BASE): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[onnx]'
	touch $(BASE)

$(DEV): $(BASE)
	$(PY) -m pip install -q -e '.[onnx,semantic,bench,dev,supervision,tune,ray]'
	touch $(DEV)

demo: $(BASE)
	$(VENV)/bin/ibntrack demo --out runs/demo

# real street footage (fetched from Debian's opencv-doc) tracked by the shipped real-footage model
real-demo: $(BASE) $(FOOTAGE)
	$(VENV)/bin/ibntrack track $(FOOTAGE) --save-video --out runs/real-demo

$(FOOTAGE):
	bash scripts/fetch_footage.sh .cache/footage

test: $(DEV) $(FOOTAGE)
	$(PY) -m pytest

lint: $(DEV)
	$(VENV)/bin/ruff check ibntrack tests benchmarks scripts
	$(VENV)/bin/mypy

bench: $(DEV)
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_association.py --gt-root ../shared/data/gt_only
	$(PY) benchmarks/bench_network.py --threads 1

cross-domain: $(DEV)
	$(PY) scripts/cross_domain.py --docs docs/RESULTS.md --ship ibntrack/assets/synth_summer_resnet18_ibn.pt

real-footage: $(DEV) $(FOOTAGE)
	$(PY) scripts/real_footage.py --gt ../shared/data/gt_only/MOT15-train/PETS09-S2L1/gt/gt.txt \
		--mot17 ../shared/data/mot17_mini --work runs/real --docs runs/real/tables.md

clean:
	rm -rf runs .pytest_cache
