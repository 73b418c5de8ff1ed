#!/usr/bin/env bash
# The GPU suite in one command (docs/performance.md): install the carried wheels (.whl/, from `make gpu-wheels`) offline into /tmp/ramlico-site, then run benchmarks/gpu_suite.py with the arguments given.
cd "$(dirname "$0")/.." && { [ ! -d .whl ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ramlico-site .whl/*.whl; } && PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/ramlico-site:$PWD${PYTHONPATH:+:$PYTHONPATH}" exec python3 benchmarks/gpu_suite.py "$@"
