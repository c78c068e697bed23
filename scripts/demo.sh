#!/bin/sh
# Sets up a virtual environment, installs yuyue and runs the demo on embedded SQLite.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/yuyue demo "$@"
