# filterlens: the two commands of the README, and a few helpers. `make help` lists the targets:
# each target's first comment line above it is its line there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
CORES ?= all
PYTEST_ARGS ?=
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once).
PYTEST_WORKERS ?= 2

.PHONY: help venv run test lint format lock clean benchmark scale in-memory

# List the targets, one line each (this file's comments above them).
help:
	@awk '/^# / { if (!block) first = substr($$0, 3); block = 1; next } \
	     /^[a-z][a-z-]*:([^=]|$$)/ && block { sub(/:.*/, ""); printf "  make %-10s %s\n", $$0, first } \
	     { block = 0 }' $(firstword $(MAKEFILE_LIST))

# Set up .venv: this clone's package over the shared pinned environment (tools/ensure-venv).
venv:
	@tools/ensure-venv

# Run the default workflow (the offline mini zoo) and its report; print the headline tables.
run: venv
	@start=$$(date +%s); \
	$(SNAKEMAKE) --cores $(CORES) && \
	$(SNAKEMAKE) --report results/report.html && \
	echo && echo "filterlens: workflow and report finished in $$(( $$(date +%s) - start )) s" && \
	$(VENV)/bin/filterlens results && \
	echo && echo "Report: $$(pwd)/results/report.html"

# Set up the environment and run the test suite (PYTEST_ARGS=..., PYTEST_WORKERS=2).
test: venv
	@start=$$(date +%s); \
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s"; exit $$status

# Benchmark the reductions against the read floor (synthetic zoos of ~50M and ~200M filters).
# About 8 GB under data/benchmark/, kept for reruns: results/benchmarks/reductions.{tsv,png}
benchmark: venv
	$(PY) dev/perf/benchmark_reductions.py $(BENCHMARK_ARGS)

# Run the paper-scale benchmark: 114 real architectures with random weights (dev/perf/Snakefile,
# dev/perf/config/scale.yaml). ~1.0 billion filters, ~33 GB of stores: per stage wall time, peak
# RSS, disk, throughput vs the read floor in results/benchmarks/scale.tsv.
scale: venv
	CORES=$(CORES) dev/perf/scale_run $(SCALE_ARGS)

# Benchmark the plain in-memory approach on the scale run's stores (results/benchmarks/in_memory.tsv).
in-memory: venv
	$(PY) dev/perf/benchmark_in_memory.py $(IN_MEMORY_ARGS)

# Lint the workflow (snakemake --lint) and check its formatting (snakefmt --check).
lint: venv
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check .

# Format the workflow's Snakemake files (snakefmt).
format: venv
	$(VENV)/bin/snakefmt .

# Re-pin requirements.txt from requirements.in, in a throw-away environment.
lock:
	rm -rf /tmp/filterlens-lock && python3 -m venv /tmp/filterlens-lock
	/tmp/filterlens-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by 'make lock' (pip freeze of a fresh environment). Do not edit by hand."; \
	  /tmp/filterlens-lock/bin/pip freeze --all | grep -v -E '^(pip|wheel)=='; } > requirements.txt

# Remove a run's outputs (results, logs, benchmarks, .snakemake); data/ and .venv stay.
clean:
	rm -rf results logs benchmarks .snakemake
