#!/usr/bin/env bash
# Set everything up (venv, Jupyter kernel, Chromium) and run the whole test suite:
# unit and property tests, every book chapter through nbval, and the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
export MPLBACKEND=Agg PYTHONHASHSEED=0
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure for this project." >&2
  exit 1
fi
exit "$status"
