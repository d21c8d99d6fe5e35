#!/usr/bin/env bash
# Security scan of infra/ and the example workflow (.github/) with checkov, in its own venv (.venv-checkov, created on first use and
# again when tests/infra/requirements-checkov.txt changes). Fails on any failed check; a check that
# does not apply is skipped next to its resource (`// checkov:skip=ID: reason`). Offline:
# --skip-download (no guideline or policy downloads).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-checkov
REQ=tests/infra/requirements-checkov.txt
PY=${PYTHON:-python3}
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "checkov: setting up $VENV" >&2
  "$PY" -m venv "$VENV"
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade "pip>=24.2" &&
         "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"; } >"$VENV/pip-install.log" 2>&1; then
    grep -v "^WARNING: Location" "$VENV/pip-install.log" | tail -40 >&2
    echo "checkov: pip install failed; full log in $VENV/pip-install.log" >&2
    exit 1
  fi
  echo "$want" > "$VENV/.requirements.sha256"
fi
exec "$VENV/bin/checkov" --directory infra --directory .github --compact --quiet --skip-download
