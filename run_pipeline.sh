#!/usr/bin/env bash
# RecoMart: set up, run the pipeline, start the Dagster UI and the app, run the tests.
#   ./run_pipeline.sh up       install if needed, train once if no model, start Dagster (3000) + app (8501)
#   ./run_pipeline.sh up --postgres   the same with the Dagster instance on a local PostgreSQL
#   ./run_pipeline.sh test     install test tools if needed, run the whole test suite
#   ./run_pipeline.sh test --repeat 5 -m browser   the same pytest run 5 times in a row, to catch flaky tests
# Run with no argument for a menu.
# The app binds RECOMART_BIND_HOST (default 127.0.0.1). The Dagster webserver always binds 127.0.0.1:
# Dagster OSS has no sign-in, so other machines reach it only through an authenticating proxy in front.
# RECOMART_VENV picks the virtual environment (default .venv/); RECOMART_SKIP_INSTALL=1 uses it as it is,
# with no pip install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${RECOMART_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
APP_HOST="${RECOMART_BIND_HOST:-127.0.0.1}"
DAGSTER_BIND=127.0.0.1  # never RECOMART_BIND_HOST: see the header
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
APP_PORT="${APP_PORT:-8501}"
MODULE=dagster_project.definitions

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "RecoMart needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

# Install (or update) the virtual environment and the project itself, editable, so its packages import
# from any folder; a stamp of pyproject.toml and the requirements skips work already done.
install() {
  local files=("requirements.txt") stamp data="${RECOMART_DATA_DIR:-data}"
  [ "${1:-}" = "dev" ] && files=("requirements-dev.txt")
  if [ "${RECOMART_SKIP_INSTALL:-0}" = 1 ]; then
    [ -x "$PY" ] || { echo "RECOMART_SKIP_INSTALL=1, but there is no $PY (set RECOMART_VENV)" >&2; exit 1; }
  else
    if [ ! -x "$PY" ]; then
      echo "Creating virtual environment in $VENV"
      "$(find_python)" -m venv "$VENV"
    fi
    stamp="$VENV/.installed-$(cat pyproject.toml requirements*.txt | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp-dev" ] && [ ! -f "$stamp-${1:-run}" ]; then
      echo "Installing dependencies (${files[*]})"
      "$PY" -m pip install --quiet --upgrade pip
      "$PY" -m pip install --quiet -r "${files[@]}"
      "$PY" -m pip install --quiet --no-deps -e .
      touch "$stamp-${1:-run}"
    fi
  fi
  mkdir -p "$DAGSTER_HOME" "$data" "${RECOMART_STORAGE_DIR:-storage}" "${RECOMART_MODELS_DIR:-models}"
  [ -n "${DAGSTER_PG_HOST:-}" ] || cmp -s dagster.yaml "$DAGSTER_HOME/dagster.yaml" || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
  [ -n "$(ls "$data"/users*.csv 2>/dev/null)" ] || "$PY" -m dagster_project.sample_data --out "$data"
}

run_job() {
  install
  "$VENV/bin/dagster" job execute -m "$MODULE" -j "$1" ${CONFIG:+-c "$CONFIG"}
}

# Start the webserver and daemon in their own session, so stopping the group stops every child.
# A fresh instance gets its tables first: started together on an empty DAGSTER_HOME, both would create
# them, and the slower one would exit with "table ... already exists".
start_dagster() {
  [ -f "$DAGSTER_HOME/history/runs.db" ] && [ -f "$DAGSTER_HOME/schedules/schedules.db" ] ||
    "$VENV/bin/dagster" instance migrate >/dev/null
  echo "Dagster UI: http://$DAGSTER_BIND:$DAGSTER_PORT"
  # dagster-webserver behind a guard: GraphQL only as the UI and the app send it (docs/SECURITY.md).
  setsid "$PY" -m dagster_project.guarded_webserver -h "$DAGSTER_BIND" -p "$DAGSTER_PORT" -m "$MODULE" &
  DAGSTER_WEB_PID=$!
  setsid "$VENV/bin/dagster-daemon" run -m "$MODULE" &
  DAGSTER_DAEMON_PID=$!
  trap stop_dagster EXIT INT TERM
}

stop_dagster() {
  trap - EXIT INT TERM
  for pid in ${APP_PID:-} ${DAGSTER_WEB_PID:-} ${DAGSTER_DAEMON_PID:-}; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

run_app() {
  echo "RecoMart app: http://$APP_HOST:$APP_PORT"
  "$VENV/bin/streamlit" run streamlit_app/app.py --server.address "$APP_HOST" --server.port "$APP_PORT" \
    --server.headless true --browser.gatherUsageStats false
}

# A local PostgreSQL for the Dagster instance (./run_pipeline.sh up --postgres): a cluster in .pgdata/
# on 127.0.0.1:${DAGSTER_PG_PORT:-5433}, with a generated password kept in .pgdata.password (git-ignored).
use_postgres() {
  local bin pgdata="$ROOT/.pgdata" pwfile="$ROOT/.pgdata.password" as=()
  bin="$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -n 1)")")"
  [ -x "$bin/pg_ctl" ] || { echo "PostgreSQL server not found: apt-get install postgresql" >&2; exit 1; }
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT="${DAGSTER_PG_PORT:-5433}" DAGSTER_PG_USER=recomart DAGSTER_PG_DB=recomart
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    echo "Creating a local PostgreSQL cluster in $pgdata"
    (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$pwfile")
    mkdir -p "$pgdata"
    if [ ${#as[@]} -gt 0 ]; then chown postgres "$pgdata" "$pwfile"; fi
    "${as[@]}" "$bin/initdb" -D "$pgdata" -U recomart --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 >/dev/null
  fi
  "${as[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o \
    "-p $DAGSTER_PG_PORT -c listen_addresses=127.0.0.1 -k $pgdata" status >/dev/null 2>&1 ||
    "${as[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o \
      "-p $DAGSTER_PG_PORT -c listen_addresses=127.0.0.1 -k $pgdata" start >/dev/null
  DAGSTER_PG_PASSWORD="$(cat "$pwfile")"
  export DAGSTER_PG_PASSWORD PGPASSWORD="$DAGSTER_PG_PASSWORD"
  "$bin/psql" -h 127.0.0.1 -p "$DAGSTER_PG_PORT" -U recomart -d postgres -tAc \
    "select 1 from pg_database where datname = 'recomart'" | grep -q 1 ||
    "$bin/createdb" -h 127.0.0.1 -p "$DAGSTER_PG_PORT" -U recomart recomart
  export DAGSTER_HOME="$ROOT/.dagster_home_pg"
  mkdir -p "$DAGSTER_HOME"
  cp deploy/postgres/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
  echo "Dagster instance on PostgreSQL at 127.0.0.1:$DAGSTER_PG_PORT (stop it with: ${as[*]} $bin/pg_ctl -D $pgdata stop)"
}

cmd_up() {
  install
  [ "${1:-}" = "--postgres" ] && use_postgres
  [ -f "${RECOMART_MODELS_DIR:-models}/collaborative_filtering.pkl" ] || run_job complete_pipeline_job
  start_dagster
  # In the background of its own session, so a TERM to this script stops the app with Dagster.
  setsid "$0" app &
  APP_PID=$!
  wait "$APP_PID"
}

cmd_ui() {
  install
  start_dagster
  wait
}

cmd_test() {
  local repeat=1
  if [ "${1:-}" = "--repeat" ]; then
    repeat="${2:-}"
    [[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 test --repeat N [pytest args]" >&2; exit 2; }
    shift 2
  fi
  install dev
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ "$repeat" = 1 ]; then
    "$PY" -m pytest "$@"
  else
    repeat_tests "$repeat" "$@"
  fi
}

# The same tests N times in a row, each a fresh pytest (new servers, new temporary folders), so a test that
# passes only by chance shows up here rather than in someone else's run. Opt-in: CI runs the suite once.
repeat_tests() {
  local n="$1" i rc start outcome failed=0 log summary=()
  shift
  log="$(mktemp)"
  for ((i = 1; i <= n; i++)); do
    echo "=== repeat $i of $n: pytest $* ==="
    start=$SECONDS
    set +e
    "$PY" -m pytest "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] || failed=$((failed + 1))
    outcome="$(grep -E '(passed|failed|errors?|skipped|deselected|no tests ran).* in [0-9.]+s' "$log" | tail -n 1 | tr -d '=' | xargs || true)"
    summary+=("repeat $i of $n: exit $rc, ${outcome:-no pytest summary}, wall $((SECONDS - start)) s")
  done
  rm -f "$log"
  echo "=== repeats ==="
  printf '%s\n' "${summary[@]}"
  echo "$((n - failed)) of $n repeats passed"
  [ "$failed" = 0 ]
}

# One menu for every platform: dagster_quickstart.py asks, then runs this script (or the .bat) with the choice.
menu() {
  exec "$(find_python)" "$ROOT/dagster_quickstart.py"
}

case "${1:-menu}" in
  install) install dev ;;
  run) run_job complete_pipeline_job ;;
  ingest) run_job ingestion_job ;;
  ui) cmd_ui ;;
  app) install; run_app ;;
  up) shift; cmd_up "$@" ;;
  test) shift; cmd_test "$@" ;;
  menu) menu ;;
  *) echo "usage: $0 [install|run|ingest|ui|app|up|test [--repeat N] [pytest args]]" >&2; exit 2 ;;
esac
