# ramlico: two commands do all the set-up on a fresh machine.
#   make test   installs the package with its dev extra, then runs the test suite
#   make demo   installs, then runs the demo (CPU, generated data, the shipped toy CLIP; minutes)
# Use a virtual environment if you like: `python3 -m venv .venv && . .venv/bin/activate` first.

PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision are installed first, pinned, when the interpreter has no torch yet; override
# TORCH_SPEC (e.g. TORCH_SPEC="torch==2.5.1 torchvision==0.20.1") for another platform.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := .make/installed-$(shell $(PYTHON) -c "import sys; print('%d.%d' % sys.version_info[:2])")
PYTEST_ARGS ?=
# One test worker per core (pytest-xdist; tests/conftest.py groups the tests that share state).
# PYTEST_WORKERS= runs the suite in this one process.
PYTEST_WORKERS ?= -n auto --dist loadgroup --no-loadscope-reorder

.PHONY: install test demo bench gpu-wheels gpu-smoke lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install $(TORCH_SPEC)
	$(PIP) install -e ".[dev]"
	@mkdir -p .make && touch $@

test: install
	$(PYTHON) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The embedded default (`python train.py` = experiment ram_demo): trains RAM on the generated data
# (the toy CLIP shipped in the package, CPU), then evaluates the best checkpoint on the ZSL and
# GZSL splits and prints the metrics table (README "Results": against zero-shot CLIP).
demo: install
	$(PYTHON) train.py

bench: install
	$(PYTHON) benchmarks/sinkhorn.py

# The GPU suite (docs/performance.md). A lent GPU machine has no network: `make gpu-wheels`
# downloads the wheels it lacks into .whl/ (carried there); benchmarks/gpu_suite.sh installs them
# offline and runs the suite. `make gpu-smoke` runs the whole suite at toy sizes on this CPU.
gpu-wheels: install
	$(PYTHON) benchmarks/gpu_wheels.py --dest .whl

gpu-smoke: install
	$(PYTHON) benchmarks/gpu_suite.py --device cpu --smoke

# Static checks (docs/development.md, "Static checks"); tests/test_static_checks.py runs the same
# two in `make test`.
lint: install
	$(PYTHON) -m ruff check ramlico tests benchmarks tools
	$(PYTHON) -m mypy

# The numbers of README.md and docs/ against fresh runs of the commands next to them
# (tools/doc_numbers.py; docs/development.md); numbers-update rewrites them.
numbers: install
	$(PYTHON) tools/doc_numbers.py

numbers-update: install
	$(PYTHON) tools/doc_numbers.py --update

clean:
	rm -rf .make build dist *.egg-info .pytest_cache .hypothesis tmp/.mypy_cache
