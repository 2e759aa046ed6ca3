# filterlens: the two commands of the README, and a few helpers.
#   make run    set up the environment and run the default workflow (the offline mini zoo)
#   make test   set up the environment and run the test suite
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
CORES ?= all
PYTEST_ARGS ?=
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once).
PYTEST_WORKERS ?= 2

.PHONY: venv run test lint format lock clean benchmark scale in-memory

venv:
	@tools/ensure-venv

run: venv
	@start=$$(date +%s); \
	$(SNAKEMAKE) --cores $(CORES) && \
	$(SNAKEMAKE) --report results/report.html && \
	echo && echo "filterlens: workflow and report finished in $$(( $$(date +%s) - start )) s" && \
	$(PY) tools/print_results.py && \
	echo && echo "Report: $$(pwd)/results/report.html"

test: venv
	@start=$$(date +%s); \
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s"; exit $$status

# The reductions against the read floor on synthetic zoos of ~50M and ~200M filters
# (about 8 GB under data/benchmark/, kept for reruns): results/benchmarks/reductions.{tsv,png}
benchmark: venv
	$(PY) tools/benchmark_reductions.py $(BENCHMARK_ARGS)

# The paper-scale run (config/scale.yaml: 114 real architectures, random weights, ~1.0 billion
# filters, ~33 GB of stores): per stage wall time, peak RSS, disk, throughput vs the read
# floor in results/benchmarks/scale.tsv. `make in-memory`: the plain in-memory approach on
# the same stores, results/benchmarks/in_memory.tsv.
scale: venv
	CORES=$(CORES) tools/scale_run $(SCALE_ARGS)

in-memory: venv
	$(PY) tools/benchmark_in_memory.py $(IN_MEMORY_ARGS)

lint: venv
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check .

format: venv
	$(VENV)/bin/snakefmt .

# Re-pin requirements.txt from requirements.in in a throw-away environment.
lock:
	rm -rf /tmp/filterlens-lock && python3 -m venv /tmp/filterlens-lock
	/tmp/filterlens-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by 'make lock' (pip freeze of a fresh environment). Do not edit by hand."; \
	  /tmp/filterlens-lock/bin/pip freeze --all | grep -v -E '^(pip|wheel)=='; } > requirements.txt

clean:
	rm -rf results logs benchmarks .snakemake
