# Two commands for a fresh machine: `make repro` (the pipeline) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The DVC stages call the console scripts (astdp-train, ...): they must come from this venv.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: repro mirror results share test test-slow floors ceilings docs plots params bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.lock  # every file checked against the lock's sha256
	PYTHONWARNINGS=ignore $(PY) -m pip install -q --no-deps -e '.[dev]'  # setuptools warns at any editable install
	@out=$$($(PY) -m pip check) || { echo "$$out"; exit 1; }  # the lock holds everything the package needs
	touch $(STAMP)

repro: $(STAMP)            ## download -> train -> evaluate -> generate, tracked by DVC
	@set -o pipefail; PYTHONUNBUFFERED=1 dvc repro | { grep --line-buffered -v '^Use `dvc push`' || test $$? = 1; }  # unbuffered: in order; headline.py says when to push
	@$(MAKE) --no-print-directory mirror
	@$(PY) scripts/headline.py

# data.dvc: the team's copy of the verified MNIST IDX files (one of data.mirrors). Pulled from
# the DVC remote, else copied from what the download stage verified: their bytes are fixed by
# conf/'s sha256, whatever source they came from, so `dvc commit` keeps data.dvc as committed.
mirror: $(STAMP)
	@test -d data/mirror || dvc pull -q data.dvc 2>/dev/null || { \
	  rm -rf data/mirror.tmp && mkdir -p data/mirror.tmp && cp data/mnist/*-ubyte data/mirror.tmp/ \
	  && mv data/mirror.tmp data/mirror && dvc commit -q -f data.dvc; }

# every preset of conf/experiment/ but the quick try
PRESETS := $(filter-out debug,$(basename $(notdir $(wildcard conf/experiment/*.yaml))))
SEEDS := 0 1 2
# the depth table's sizes besides the deep preset's own [1000]: its width, and a narrow one
DEPTHS := [1000,1000] [1000,1000,1000] [300] [300,300] [300,300,300]

results: $(STAMP)          ## every preset (and depth) at every seed as a DVC experiment; results/ and the README tables
	dvc repro download
	for seed in $(SEEDS); do dvc exp run --temp -S seed=$$seed || exit 1; done
	for preset in $(PRESETS); do for seed in $(SEEDS); do \
	  dvc exp run --temp -S experiment=$$preset -S seed=$$seed || exit 1; done; done
	for h in $(DEPTHS); do for preset in invariant invariant_baseline; do for seed in $(SEEDS); do \
	  dvc exp run --temp -S experiment=$$preset -S "model.net.hidden=$$h" -S seed=$$seed || exit 1; done; done; done
	astdp-results --collect --readme README.md docs/results.md --figure docs/figures/accuracy.png

share: $(STAMP)            ## the commits, every experiment and their outputs to the remotes (git origin, DVC's default)
	git push origin HEAD
	dvc exp push --all-commits origin

test: $(STAMP)             ## the fast suite on two workers (pytest-xdist; a plain `pytest` runs it in one process)
	$(PY) -m pytest -n 2

test-slow: $(STAMP)        ## real-MNIST and sweep tests
	$(PY) -m pytest -m slow

floors ceilings:           ## the fast suite in a fresh venv at the lowest (floors) or newest (ceilings) versions pyproject.toml admits
	rm -rf .venv-$@ && python3.11 -m venv .venv-$@
	.venv-$@/bin/python -m pip install -q --upgrade pip packaging
	.venv-$@/bin/python scripts/bounds.py $@ > .venv-$@/constraints.txt
	.venv-$@/bin/python -m pip install -q -c .venv-$@/constraints.txt '.[dev]'  # not editable: what a user's pip install makes
	.venv-$@/bin/python scripts/bounds.py --lock  # which versions differ from the lock's (ceilings: the newer releases)
	PATH=$(abspath .venv-$@)/bin:$$PATH .venv-$@/bin/python -m pytest -n 2

docs: $(STAMP)             ## the documentation site from docs/ (Material for MkDocs) into site/, warnings as errors
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

plots: $(STAMP)            ## the pipeline's plots as dvc_plots/index.html, drawn offline (templates rewritten first)
	$(PY) scripts/plot_templates.py
	dvc plots show

params: $(STAMP)           ## recompose params.yaml from conf/ (dvc exp run does this itself)
	$(PY) -c "from pathlib import Path; from dvc.utils.hydra import compose_and_dump; \
	compose_and_dump(Path('params.yaml'), str(Path('conf').resolve()), None, 'config', 'src', [])"

bench: $(STAMP)            ## speed side by side; results/bench.json gives the depth table its epoch times
	$(PY) benchmarks/bench.py --quick --out results/bench.json
