#!/usr/bin/env bash
# Builds diag as one executable with PyInstaller (dist/diag, dist/diag.exe on Windows), then checks
# it: `diag checks` must list every check pyproject.toml declares and a loopback `diag run` must
# finish. Usage: bash scripts/build-exe.sh [--no-check]. Runs on Linux, Windows (Git Bash) and macOS;
# a binary is built for the OS it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
[ -x "$PY" ] || PY=$PWD/.venv/Scripts/python.exe
if [ "${1:-}" != "--check-only" ]; then
"$PY" -m pip install -q -e '.[build]'
# Package data (locales, report templates, profiles, the dashboard's .tcss, the run schema) and
# the package metadata (version, entry points: plugins of the diag.checks group still register
# through it; the built-ins also load from diag.checks.base.BUILTIN_CHECKS without it).
# dnspython and scapy import their record types and layers by name; Babel and jsonschema read data
# files; Textual loads its widgets lazily; the report picks its matplotlib backends by name.
"$PY" -m PyInstaller --noconfirm --clean --onefile --name diag \
  --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
  --log-level WARN \
  --collect-data diag --copy-metadata diag \
  --collect-submodules diag \
  --collect-submodules dns \
  --collect-submodules scapy.layers \
  --collect-data babel --collect-data textual --collect-submodules textual.widgets \
  --collect-data jsonschema_specifications \
  --hidden-import matplotlib.backends.backend_svg --hidden-import matplotlib.backends.backend_agg \
  --exclude-module pytest --exclude-module hypothesis --exclude-module mypy \
  scripts/diag_frozen.py
fi
BIN=dist/diag
[ -x "$BIN" ] || BIN=dist/diag.exe
ls -l "$BIN"
[ "${1:-}" = "--no-check" ] && exit 0
# The binary, without the source tree's package on its path, lists every declared check.
want=$("$PY" - <<'PY'
import tomllib
print(" ".join(sorted(tomllib.load(open("pyproject.toml", "rb"))["project"]["entry-points"]["diag.checks"])))
PY
)
got=$(cd / && "$OLDPWD/$BIN" checks --json | "$PY" -c 'import json,sys; print(" ".join(sorted(c["id"] for c in json.load(sys.stdin)["checks"])))')
if [ "$want" != "$got" ]; then
  echo "frozen diag checks: got [$got], want [$want]" >&2
  exit 1
fi
echo "frozen diag checks: $got"
# A loopback run: every server of the example is 127.0.0.x with nothing listening, so the checks
# report timeouts and refusals; the run must finish and write a valid report (exit 0-3: states).
out=$(mktemp -d)
set +e
(cd / && "$OLDPWD/$BIN" run --site "$OLDPWD/examples/loopback-site.toml" --deadline 20 \
   --json "$out/run.json" --html "$out/run.html" >"$out/run.txt" 2>&1)
rc=$?
set -e
if [ "$rc" -gt 3 ] || [ ! -s "$out/run.json" ] || [ ! -s "$out/run.html" ]; then
  echo "frozen diag run failed (exit $rc):" >&2
  cat "$out/run.txt" >&2
  exit 1
fi
"$PY" -c 'import json,sys; from diag.reports.json import validate; e=validate(json.load(open(sys.argv[1]))); print("frozen run.json schema errors:", e) or sys.exit(1 if e else 0)' "$out/run.json"
echo "frozen diag run: exit $rc, $(wc -c <"$out/run.json") bytes of JSON"
rm -rf "$out"
