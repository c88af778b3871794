# The README's two commands: `make demo` and `make test`.  Both set up .venv first.
PY := .venv/bin/python
DEVICE ?= cpu
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-fast bench clean
setup:
	DEVICE=$(DEVICE) bash scripts/setup.sh

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) scripts/bench_throughput.py

clean:
	rm -rf .venv runs outputs
