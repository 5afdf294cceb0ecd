# ai-video-processor: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK_DIR ?= .local
# The local stack's Prefect database: sqlite, postgres, or a postgresql+asyncpg:// URL.
PREFECT_DB ?= sqlite
export PREFECT_DB
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help install system-deps demo test lint typecheck up down clean

help:
	@echo "make demo   run the whole pipeline on a local stack (no cloud account needed)"
	@echo "make test   lint, type-check and run the test suite"
	@echo "make up / make down   start / stop the local stack ($(STACK_DIR)/stack.env)"
	@echo "make up PREFECT_DB=postgres   the same, its Prefect server on a local PostgreSQL"

system-deps:
	@scripts/install-system-deps.sh $(if $(filter postgres,$(PREFECT_DB)),--postgres)

$(VENV)/.installed: requirements.txt requirements-cloud.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

install: system-deps $(VENV)/.installed

up: install
	$(PY) -m local_stack up --dir $(STACK_DIR)

down:
	@if [ -x $(PY) ]; then $(PY) -m local_stack down --dir $(STACK_DIR); fi

demo: up
	$(PY) -m local_stack.demo --dir $(STACK_DIR)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy video_processor flows blocks sensors operations local_stack bench workers tests scripts

test: lint typecheck
	@scripts/install-system-deps.sh --postgres
	$(VENV)/bin/pytest -q

clean: down
	rm -rf $(VENV) $(STACK_DIR) .mypy_cache .ruff_cache .pytest_cache

.PHONY: mutation
MUTATION_ARGS ?=
mutation: install  ## mutants of the pure modules vs their own unit tests -> bench/results/mutation.json; fails under 85 % in a core module (not in `make test`)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-mutation.txt
	$(PY) scripts/mutation.py $(MUTATION_ARGS)

.PHONY: bench-summary
bench-summary: install  ## summary evaluation: local, fake Anthropic, and real Claude when a key is set
	$(PY) -m bench.summary_eval

.PHONY: bench-accuracy
bench-accuracy: install  ## WER of the audio profiles on noisy real speech -> bench/results/accuracy.json
	@scripts/install-system-deps.sh --bench
	$(PY) -m bench.accuracy

.PHONY: bench-transcripts
bench-transcripts: install  ## transcripts per kind of upload: CER/WER, coverage, loops, confidence, outcome -> bench/results/transcripts.json
	@scripts/install-system-deps.sh --bench
	$(PY) -m bench.transcripts

.PHONY: bench-audio
bench-audio: install  ## audio stage time / filter-chain-only time on a 10 min upload -> bench/results/audio.json
	$(PY) -m bench.audio

.PHONY: chaos
N ?= 200
CHAOS_ARGS ?=
chaos: install  ## N jobs under kills, duplicates and faults -> bench/results/chaos.json (not in `make test`)
	$(PY) -m bench.chaos --n $(N) $(CHAOS_ARGS)

.PHONY: bench-latency bench-memory bench-stt-scaling bench-soak
LATENCY_ARGS ?=
bench-latency: install  ## 10-min video vs its critical-path bound and sequential STT -> bench/results/latency.json (~10 min)
	$(PY) -m bench.latency $(LATENCY_ARGS)

SOAK_ARGS ?=
bench-soak: install  ## 500 short runs through the warm worker: its RSS and temp files left -> bench/results/soak.json
	$(PY) -m bench.soak $(SOAK_ARGS)

MEMORY_ARGS ?=
bench-memory: install  ## worker peak RSS for a 50 MB and a 2 GB video -> bench/results/memory.json (~10 min: moto serves 2 GB slowly)
	$(PY) -m bench.memory $(MEMORY_ARGS)

STT_SCALING_ARGS ?=
bench-stt-scaling: install  ## STT latency vs video length, sequential vs concurrent -> bench/results/stt_latency.{json,png} (~5 min)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m bench.stt_scaling $(STT_SCALING_ARGS)

.PHONY: bench-throughput
# `make bench-throughput N=50`: N given on the command line (or in the environment) is the
# count; otherwise N_THROUGHPUT, default 100 (N's own default, 200, is chaos's).
N_THROUGHPUT ?= $(if $(filter command line environment,$(origin N)),$(N),100)
THROUGHPUT_ARGS ?=
bench-throughput: install  ## N videos through the warm worker (--modes: process, process-engine) vs a sequential worker, on PostgreSQL then SQLite -> bench/results/throughput.json (~13 min at N=100)
	@scripts/install-system-deps.sh --postgres
	$(PY) -m bench.throughput --n $(N_THROUGHPUT) $(THROUGHPUT_ARGS)

.PHONY: image image-base image-check
BASE_IMAGE ?= python:3.11-slim-bookworm
image:  ## the images' two targets, ai-video-processor:0.1.0-cloud (also :0.1.0) and -full, on BASE_IMAGE
	BASE_IMAGE=$(BASE_IMAGE) scripts/build-image.sh

image-base:  ## a stand-in base image from Debian packages (debootstrap): ai-video-processor-base:bookworm
	scripts/stand-in-base.sh

image-check: install  ## build the images and run sensor, workers and a pod's run from them (not in `make test`)
	$(PY) -m local_stack.image_check --base-image $(BASE_IMAGE)
