#!/usr/bin/env bash
# Runs the whole test suite: install check, lint, types, unit and lab tests. Usage (as root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-demo
.venv/bin/ruff check diag tests bench
.venv/bin/ruff format --check diag tests bench
.venv/bin/mypy
# The single-file build (PyInstaller): built, then its `diag checks` and a loopback `diag run`.
bash scripts/build-exe.sh
.venv/bin/diag lab down --all >/dev/null 2>&1 || true
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
.venv/bin/diag lab down --all >/dev/null 2>&1 || true
# pytest's 5 means no test ran: that is a failure here.
exit $rc
