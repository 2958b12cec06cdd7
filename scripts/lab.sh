#!/usr/bin/env bash
# Open the book in JupyterLab from the project's environment (.venv): a double-click on a chapter
# opens it as a notebook with the "Python 3 (metacadi)" kernel, and its widgets are live.
# Extra arguments go to `jupyter lab` (e.g. --port 8890, --no-browser).
#   bash scripts/lab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Panel's and Bokeh's JavaScript come with the kernel's output instead of from a CDN, so the
# widgets also work offline.
export PANEL_INLINE="${PANEL_INLINE:-1}"
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi  # e.g. in a container
exec .venv/bin/jupyter lab book/ "${extra[@]}" "$@"
