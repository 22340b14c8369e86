#!/usr/bin/env bash
# `make run`: the example server on a fresh clone, with its embedded database.
# Creates (or updates) the SQLite schema next to opensips.cfg.example, adds the
# demo user alice once, says how to use it, then runs the server in the
# foreground (Ctrl-C stops it). Idempotent: a second run keeps the data.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export SIPSERVER_DB_URL="sqlite://$PWD/sipserver.db"
DOMAIN=127.0.0.1
"$VENV/bin/sipctl" db migrate >/dev/null
if ! "$VENV/bin/sipctl" add "alice@$DOMAIN" alice-secret >/dev/null 2>&1; then
    : # alice is already there
fi
cat <<INFO
sipserver example: registrar + authenticating record-routing proxy on udp:$DOMAIN:5060
  database     $SIPSERVER_DB_URL
  softphone    user alice, domain $DOMAIN, password alice-secret, proxy $DOMAIN:5060 (UDP)
  more users   SIPSERVER_DB_URL=$SIPSERVER_DB_URL $VENV/bin/sipctl add bob@$DOMAIN bob-secret
  registered   $VENV/bin/sipctl -m fifo:/tmp/sipserver_example_fifo ul show
  statistics   $VENV/bin/sipctl -m fifo:/tmp/sipserver_example_fifo stats
Ctrl-C stops the server.
INFO
exec "$VENV/bin/sipserver" -f opensips.cfg.example -F -E
