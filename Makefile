# Two commands for a fresh machine: `make repro` (the pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The DVC stages call the console scripts (astdp-train, ...): they must come from this venv.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: repro mirror paper test test-slow params bench clean
# A folder of the four MNIST archives, used to fill data.dvc's copy when the DVC remote has none.
MNIST_ARCHIVES ?= ../shared/mnist

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP) mirror     ## download -> train -> evaluate -> generate, tracked by DVC
	dvc repro

# data.dvc's archives: pulled from the DVC remote, else copied from MNIST_ARCHIVES and cached
# (`dvc commit` keeps data.dvc as it is when the bytes match). The pipeline runs without them.
mirror: $(STAMP)
	@test -d data/mirror || dvc pull -q data.dvc 2>/dev/null || { \
	  test -d $(MNIST_ARCHIVES) && rm -rf data/mirror.tmp && mkdir -p data/mirror.tmp \
	  && cp $(MNIST_ARCHIVES)/*-ubyte.gz data/mirror.tmp/ && mv data/mirror.tmp data/mirror \
	  && dvc commit -q -f data.dvc; } \
	  || echo "note: no copy of data/mirror (dvc pull data.dvc); the download stage uses data.mirrors"

PRESETS := paper paper_baseline deep deep_baseline unsupervised baseline fashion fashion_baseline
DEPTHS := [1000] [1000,1000,1000]  # the deep preset's other sizes, for the depth table (its own is [1000,1000])

paper: $(STAMP)            ## every preset (and depth) as a DVC experiment; results/ and the README tables
	dvc repro download
	for preset in $(PRESETS); do dvc exp run --temp -S experiment=$$preset || exit 1; done
	for h in $(DEPTHS); do for preset in deep deep_baseline; do \
	  dvc exp run --temp -S experiment=$$preset -S "model.net.hidden=$$h" || exit 1; done; done
	astdp-results --collect --readme README.md

test: $(STAMP)             ## the fast suite (a few minutes on 2 cores)
	$(PY) -m pytest

test-slow: $(STAMP)        ## real-MNIST and sweep tests
	$(PY) -m pytest -m slow

params: $(STAMP)           ## recompose params.yaml from conf/ (dvc exp run does this itself)
	$(PY) -c "from pathlib import Path; from dvc.utils.hydra import compose_and_dump; \
	compose_and_dump(Path('params.yaml'), str(Path('conf').resolve()), None, 'config', 'src', [])"

bench: $(STAMP)
	$(PY) benchmarks/bench.py --quick
