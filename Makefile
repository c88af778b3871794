# The README's two commands: `make demo` and `make test`.  Both set up .venv first.
PY := .venv/bin/python
DEVICE ?= cpu
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test bench bench-analysis bench-criteo clean
setup:
	DEVICE=$(DEVICE) bash scripts/setup.sh

demo: setup
	$(PY) scripts/demo.py $(ARGS)

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) scripts/bench_throughput.py

bench-analysis: setup
	$(PY) scripts/bench_analysis.py

bench-criteo: setup
	$(PY) scripts/bench_criteo_preprocess.py

clean:
	rm -rf .venv runs outputs
