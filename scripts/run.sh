#!/usr/bin/env bash
# Set everything up, then serve the interactive explorer with Panel and print its URL.
#   bash scripts/run.sh               # http://127.0.0.1:5006/explorer
#   PORT=5010 bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${PORT:-5006}"
address="${ADDRESS:-127.0.0.1}"
echo "==> serving the explorer at http://${address}:${port}/explorer (Ctrl-C to stop)"
exec .venv/bin/panel serve widgets/explorer.py --address "$address" --port "$port" \
  --allow-websocket-origin="${address}:${port}" --allow-websocket-origin="localhost:${port}" "$@"
