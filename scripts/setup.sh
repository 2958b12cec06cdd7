#!/usr/bin/env bash
# Create (or refresh) the project-local virtual environment in .venv.
# Idempotent: a second run only checks a stamp and returns in about a second.
#   bash scripts/setup.sh            # Python packages only
#   bash scripts/setup.sh --browser  # also Debian's chromium, for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --browser)" >&2; exit 2 ;;
  esac
done

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "setup.sh: metacadi needs Python 3.11 (torch==2.13.0 is pinned for it); '$python_bin' is $("$python_bin" --version 2>&1)." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi

stamp=.venv/.metacadi-setup
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$fingerprint" ]; then
  echo "==> installing metacadi and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first and pinned: a looser request would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (metacadi)" >/dev/null
  echo "$fingerprint" > "$stamp"
else
  echo "==> .venv is up to date"
fi

# JupyterLab opens the book's MyST-markdown chapters as notebooks on double-click (jupytext's
# "Jupytext Notebook" viewer) and starts the chapter's kernel ("Python 3 (metacadi)") without
# asking (a jupytext notebook otherwise opens a kernel picker). The settings live in a
# package-owned override file inside .venv (JupyterLab reads <app dir>/settings/overrides.d/*.json),
# never in the user's ~/.jupyter, and it is rewritten on every run, whether or not the packages
# above were reinstalled.
lab_overrides=.venv/share/jupyter/lab/settings/overrides.d
mkdir -p "$lab_overrides"
cat > "$lab_overrides/metacadi.json" <<'JSON'
{
  "@jupyterlab/docmanager-extension:plugin": {
    "defaultViewers": {
      "markdown": "Jupytext Notebook",
      "myst": "Jupytext Notebook"
    }
  },
  "@jupyterlab/notebook-extension:tracker": {
    "autoStartDefaultKernel": true
  }
}
JSON

# The browser test and benchmarks/explorer_latency.py drive this Debian chromium through
# Playwright's executable_path. Only the playwright Python package is installed (the [test]
# extra); `playwright install` is never run, so no Playwright-managed browser is downloaded.
if [ "$want_browser" = 1 ]; then
  if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Debian's chromium for the browser test"
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  fi
  if ! /usr/bin/chromium --headless --no-sandbox --version >/dev/null 2>&1; then
    echo "setup.sh: /usr/bin/chromium is installed but does not start (try: /usr/bin/chromium --headless --no-sandbox --version)." >&2
    exit 1
  fi
fi
