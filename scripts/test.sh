#!/usr/bin/env bash
# The README's test command: install ferzoo with its test extras (and the
# export runtimes of the deploy-test extra), lint, then
# run the default and `large` test tiers under TensorFlow and under JAX,
# and a CLI smoke run. Usage: bash scripts/test.sh [extra pytest args]
# Two pytest-xdist workers (CI has 2 cores): 26 min for both backends on a
# 2-core machine shared with a niced benchmark (2026-12-07, after issue 31;
# 17.7 min before the suite grew); pass `-n 0`
# to run in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check ".[test,deploy-test]"
ruff check ferzoo tests scripts
for script in scripts/*.py; do python "$script" --help > /dev/null; done
export TF_CPP_MIN_LOG_LEVEL=2
status=0
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend ==="
  KERAS_BACKEND=$backend python -m pytest tests -q -p no:cacheprovider \
    --run_large --durations=5 -n 2 "$@" || status=1
done
exit $status
