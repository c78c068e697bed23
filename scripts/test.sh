#!/bin/sh
# Sets up a virtual environment with the test tools and runs every check CI runs:
# ruff, mypy (strict on src/), alembic check, and the test suite on SQLite and PostgreSQL.
# PostgreSQL comes from YUYUE_TEST_POSTGRES_URL (default: postgresql://postgres@127.0.0.1:5432/test);
# without a server its half is skipped, except with CI=true, where it must run. The same
# holds for the browser tests and Chromium (/usr/bin/chromium).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# The browser tests (tests/e2e) drive Debian's Chromium, never a downloaded one; a CJK
# font makes the Chinese in their screenshots readable. Both are installed when missing and
# we may (root with apt); without Chromium the browser tests are skipped, except with CI=true.
missing=""
[ -x /usr/bin/chromium ] || missing=" chromium"
command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh)" ] || missing="$missing fonts-noto-cjk"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing$missing"
    # shellcheck disable=SC2086
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null; } ||
        echo "could not install$missing; the browser tests need it" >&2
fi

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== alembic check"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
YUYUE_DATABASE_URL="sqlite+aiosqlite:///$tmp/check.db" YUYUE_SECRET_FILE="$tmp/secret" .venv/bin/yuyue init >/dev/null
YUYUE_DATABASE_URL="sqlite+aiosqlite:///$tmp/check.db" .venv/bin/alembic check
echo "== pytest"
.venv/bin/python -m pytest "$@"
