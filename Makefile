# The README's two commands: `make demo` (set up, then train and evaluate on ml-100k) and
# `make test` (set up, then run the test suite). Everything lives in .venv inside the checkout.
VENV ?= .venv
PY := $(VENV)/bin/python
SEQREC := $(VENV)/bin/seqrec

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

# torch goes first with an exact pin so pip takes the local CPU build instead of a CUDA one.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,serve]"
	touch $@

# The main job: fetch ml-100k, then train and evaluate BERT4Rec and SASRec (tables with 95% CIs),
# with the popularity baseline as the floor (the same data, split and evaluation, as a model).
demo: setup
	$(SEQREC) data fetch ml-100k
	$(SEQREC) train configs/pop-ml-100k.yaml
	$(SEQREC) train configs/bert4rec-ml-100k.yaml
	$(SEQREC) train configs/sasrec-ml-100k.yaml

test: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

bench: setup
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/full_ranking.py
	$(PY) benchmarks/eval_widths.py
	$(PY) benchmarks/ctr_full_ranking.py
	$(PY) benchmarks/lightning_overhead.py
	$(PY) benchmarks/training_throughput.py
	$(PY) benchmarks/vs_recbole.py
	$(PY) benchmarks/eval_floor.py
	$(PY) benchmarks/dien_floor.py
	$(PY) benchmarks/ddp_scaling.py

clean:
	rm -rf $(VENV) runs
