# The two commands a newcomer needs: `make train` (the main job) and `make test`; beside them `make train-gpt`
# (the character-level GPT), `make train-dcgan` (a DCGAN drawing MNIST digits) and the others below. Each sets
# itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup train train-gpt train-lstm train-ddp train-resnet train-dcgan test lint clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	@command -v dot >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && (apt-get install -y -qq graphviz >/dev/null 2>&1 || (apt-get update -qq >/dev/null && apt-get install -y -qq graphviz >/dev/null))) || echo "note: install the system package 'graphviz' for PDF drawings"
	touch $@

setup: $(VENV)/.installed

train: setup
	$(BIN)/python examples/train_lenet.py

train-gpt: setup
	$(BIN)/python examples/train_charlm.py

train-lstm: setup
	$(BIN)/python examples/train_charlm.py --model lstm

train-resnet: setup
	$(BIN)/python examples/train_resnet.py

train-ddp: setup
	$(BIN)/python -m graphnet.distributed.run --nproc-per-node 2 examples/train_ddp.py

train-dcgan: setup
	$(BIN)/python examples/dcgan_mnist.py

test: setup
	$(BIN)/python -m pytest -n 2 -m "not cuda" tests
	@if [ -d tests/cuda ]; then NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -n 2 -m cuda tests/cuda; fi

lint: setup
	$(BIN)/ruff check graphnet tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
