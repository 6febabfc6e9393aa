#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu server for a workshop; safe to run again (idempotent).
#
#   sudo scripts/setup_server.sh           install and configure what is missing
#   scripts/setup_server.sh --check        report what is missing, change nothing
#
# It installs the system packages (those the participant guide and the instructor guide
# use: tmux, curl, ...), a shared virtual environment for the teams at /opt/workshop/venv
# (participant_starter/requirements.txt + jupyter), the game server in
# /opt/workshop/game-venv with a link /usr/local/bin/game-server, both built from the
# system's Python (/usr/bin/python3) and checked runnable by an unprivileged user; applies
# the shared PostgreSQL set-up (database_docker/initdb/01-workshop.sql: databases, the
# game's role, the teams' base role), gives the game's role a generated password kept in
# /etc/game-server/env (0600, read by the systemd unit; 02-game-role.sh) and writes a
# systemd unit for `game-server run` (enabled only when systemd is running). Settings come
# from the environment:
#   WORKSHOP_DIR (/opt/workshop)  GAME_DB (game)  WORKSHOP_DB (workshop)  GAME_PORT (8000)
#   GAME_ROLE (game_server)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"  # also when sourced (the tests)
WORKSHOP_DIR="${WORKSHOP_DIR:-/opt/workshop}"
TEAM_VENV="$WORKSHOP_DIR/venv"
GAME_VENV="$WORKSHOP_DIR/game-venv"
GAME_DB="${GAME_DB:-game}"
WORKSHOP_DB="${WORKSHOP_DB:-workshop}"
GAME_PORT="${GAME_PORT:-8000}"
GAME_ROLE="${GAME_ROLE:-game_server}"
ENV_FILE=/etc/game-server/env
UNIT=/etc/systemd/system/game-server.service
SOCKET_UNIT=/etc/systemd/system/game-server.socket
SERVICE_USER=game-server
LINK=/usr/local/bin/game-server
# The venvs are built from the system's Python, never the first python3 on root's PATH:
# that may be root's own (a pyenv under /root) that no team can run.
SYSTEM_PYTHON=/usr/bin/python3
# tmux, curl: the participant guide; openssl, make, git: the instructor guide. And npm for
# the deck's pinned reveal.js, unless a Node.js that brings its own is installed.
PACKAGES=(python3 python3-venv python3-pip postgresql postgresql-client openssh-server
  sudo procps iproute2 tar passwd tmux curl openssl make git)

check=0
missing=0
say() { echo "setup_server: $*"; }
todo() { missing=$((missing + 1)); say "missing: $*"; }
# Each step says what it does and, when the next begins, how long it took (a pip install
# runs for minutes: the instructor sees where the time goes).
STEPS=7
step_no=0
step_started=$SECONDS
step() {
  if [ "$step_no" -gt 0 ]; then say "   ... $((SECONDS - step_started)) s"; fi
  step_no=$((step_no + 1)); step_started=$SECONDS
  say "[$step_no/$STEPS] $*"
}

# Is $1 a virtual environment of the system's Python? (Its python is the same file.)
venv_is_system() { [ "$(readlink -f "$1/bin/python")" = "$(readlink -f "$SYSTEM_PYTHON")" ]; }

# Can an unprivileged user import module $2 with venv $1? As root: as `nobody`; otherwise
# as the user running --check, who is unprivileged too.
venv_runs_unprivileged() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u nobody -- "$1/bin/python" -c "import $2") >/dev/null 2>&1
  else
    (cd / && "$1/bin/python" -c "import $2") >/dev/null 2>&1
  fi
}

# Build venv $1 from the system's Python (again, if it was built from another one),
# pip install $3..., and check that an unprivileged user can import $2 with it.
make_venv() {
  local venv="$1" module="$2"; shift 2
  if [ -e "$venv" ] && ! venv_is_system "$venv"; then
    if [ ! -f "$venv/pyvenv.cfg" ]; then
      echo "setup_server: error: $venv exists and is not a virtual environment: move it away" >&2
      exit 1
    fi
    if [ "$check" -eq 1 ]; then todo "$venv built from $SYSTEM_PYTHON"; return; fi
    say "rebuilding $venv from $SYSTEM_PYTHON"; rm -rf "$venv"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    if [ "$check" -eq 1 ]; then todo "virtual environment $venv"; return; fi
    say "creating $venv"; mkdir -p "$(dirname "$venv")"; "$SYSTEM_PYTHON" -m venv "$venv"
  fi
  if [ "$check" -eq 0 ]; then
    # the versions in constraints.txt: the same on every server, whatever day it is set up
    "$venv/bin/python" -m pip install --quiet -c "$REPO/constraints.txt" "$@"
    chmod a+rx "$(dirname "$venv")"; chmod -R a+rX "$venv"  # whatever root's umask was
  fi
  if ! venv_runs_unprivileged "$venv" "$module"; then
    if [ "$check" -eq 1 ]; then todo "$venv runnable by unprivileged users (import $module)"; return; fi
    echo "setup_server: error: user nobody cannot run $venv/bin/python -c 'import $module':" \
      "make the folders above $venv readable by all (chmod a+rx), or delete $venv and run again" >&2
    exit 1
  fi
}

# The tests source this file for the functions above: stop here when sourced.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "setup_server.sh: unknown argument $1 (use --check or nothing)" >&2; exit 2 ;;
esac

if [ "$check" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "setup_server.sh: run as root (sudo), or use --check" >&2
  exit 1
fi

step "system packages"
# 1. System packages.
need=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$check" -eq 1 ]; then todo "packages ${need[*]}"; else
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi

step "PostgreSQL and the shared database set-up"
# 2. PostgreSQL running, then the shared set-up (database, base role, hardening).
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  if [ "$check" -eq 1 ]; then todo "PostgreSQL on 127.0.0.1:5432"; else
    say "starting PostgreSQL"
    if [ -d /run/systemd/system ]; then systemctl enable --now postgresql; else
      pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk 'NR==1 {print $1}')" main start
    fi
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
as_postgres() { # run a command as the postgres user (runuser as root, else sudo -n)
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else
    (cd / && sudo -n -u postgres "$@"); fi
}
if pg_up; then
  has_db() { as_postgres psql -X -Atqc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; }
  has_role() { as_postgres psql -X -Atqc "SELECT 1 FROM pg_roles WHERE rolname = '$1'" | grep -q 1; }
  # The game server runs as its own system user; it logs in as the database role GAME_ROLE
  # with the password in ENV_FILE (over TCP on 127.0.0.1, as in the Docker set-up).
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    if [ "$check" -eq 1 ]; then todo "system user $SERVICE_USER"; else
      say "creating system user $SERVICE_USER"
      useradd --system --user-group --home-dir /var/lib/game-server --create-home \
        --shell /usr/sbin/nologin "$SERVICE_USER"
      chmod 700 /var/lib/game-server  # the game's own data folder: nobody else reads it
    fi
  fi
  if [ "$check" -eq 1 ]; then
    has_db "$GAME_DB" || todo "database $GAME_DB (shared init SQL)"
    has_db "$WORKSHOP_DB" || todo "database $WORKSHOP_DB (shared init SQL)"
    has_role "$GAME_ROLE" || todo "database role $GAME_ROLE (shared init SQL)"
    [ -f "$ENV_FILE" ] || todo "$ENV_FILE (the game's database password)"
  else
    say "applying database_docker/initdb/01-workshop.sql"
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -v "workshop_db=$WORKSHOP_DB" \
      -v "game_db=$GAME_DB" -v "game_role=$GAME_ROLE" -d postgres \
      < "$REPO/database_docker/initdb/01-workshop.sql"
    no_password() {
      as_postgres psql -X -Atqc \
        "SELECT 1 FROM pg_authid WHERE rolname = '$GAME_ROLE' AND rolpassword IS NULL" | grep -q 1
    }
    if [ ! -f "$ENV_FILE" ] || no_password; then
      if [ -f "$ENV_FILE" ]; then  # keep the password the env file already holds
        password="$(sed -n 's|^GAME_DATABASE_URL=[^:]*://[^:]*:\([^@]*\)@.*|\1|p' "$ENV_FILE")"
      else
        password="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
      fi
      say "writing $ENV_FILE (0600) and setting the password of role $GAME_ROLE"
      install -d -m 700 "$(dirname "$ENV_FILE")"
      (umask 077; printf 'GAME_DATABASE_URL=postgresql+psycopg://%s:%s@127.0.0.1:5432/%s\n' \
        "$GAME_ROLE" "$password" "$GAME_DB" > "$ENV_FILE")
      GAME_DB_PASSWORD="$password" GAME_ROLE="$GAME_ROLE" \
        as_postgres bash -s < "$REPO/database_docker/initdb/02-game-role.sh"
    fi
  fi
fi

step "the teams' and the game's virtual environments (pip, a few minutes)"
# 3. The teams' shared virtual environment and the game server's own, and `game-server`
# on the instructor's PATH (and sudo's secure_path).
make_venv "$TEAM_VENV" sklearn -r "$REPO/participant_starter/requirements.txt" jupyter
make_venv "$GAME_VENV" game_server "${REPO}[pg,accounts]"  # users and rehearse: SSH
if [ "$(readlink "$LINK" || true)" != "$GAME_VENV/bin/game-server" ]; then
  if [ "$check" -eq 1 ]; then todo "$LINK -> $GAME_VENV/bin/game-server"; else
    say "linking $LINK -> $GAME_VENV/bin/game-server"
    ln -sfn "$GAME_VENV/bin/game-server" "$LINK"
  fi
fi

step "the deck (/slides/)"
# 4. The deck, served by the game at /slides/: built in the checkout (a pinned reveal.js from
# npm, as `make slides` does), copied where the game's own user can read it, and named by
# GAME_SLIDES_DIR in the env file.
SLIDES_DIR="$WORKSHOP_DIR/slides"
if [ ! -f "$SLIDES_DIR/index.html" ] || ! diff -rq "$REPO/slides/build" "$SLIDES_DIR" >/dev/null 2>&1; then
  if [ "$check" -eq 1 ]; then todo "the deck in $SLIDES_DIR (served at /slides/)"; else
    if [ ! -f "$REPO/slides/build/index.html" ]; then
      say "building the deck (scripts/build_slides.py)"
      "$GAME_VENV/bin/python" "$REPO/scripts/build_slides.py" --no-pdf >/dev/null
    fi
    say "copying the deck to $SLIDES_DIR"
    rm -rf "$SLIDES_DIR"; cp -r "$REPO/slides/build" "$SLIDES_DIR"; chmod -R a+rX "$SLIDES_DIR"
  fi
fi
if [ -f "$ENV_FILE" ] && ! grep -q '^GAME_SLIDES_DIR=' "$ENV_FILE"; then
  if [ "$check" -eq 1 ]; then todo "GAME_SLIDES_DIR in $ENV_FILE"; else
    say "naming the deck in $ENV_FILE"; echo "GAME_SLIDES_DIR=$SLIDES_DIR" >> "$ENV_FILE"
  fi
fi

step "the instructor's notebooks"
# 5. The instructor's notebooks, run as the game's own user (Jupyter refuses root, and that
# user may read the game database): a venv with Jupyter and the game server, and the
# notebooks with the training data in the game's own folder (copied once: edits stay).
INSTRUCTOR_VENV="$WORKSHOP_DIR/instructor-venv"
GAME_HOME=/var/lib/game-server
make_venv "$INSTRUCTOR_VENV" game_server "${REPO}[pg,notebooks]"
if [ ! -f "$GAME_HOME/notebooks/3.0-instructor-debrief.ipynb" ] || [ ! -f "$GAME_HOME/data/train_data.csv" ]; then
  if [ "$check" -eq 1 ]; then todo "the instructor's notebooks in $GAME_HOME/notebooks"; else
    say "copying the instructor's notebooks and the training data to $GAME_HOME"
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 700 "$GAME_HOME/notebooks" "$GAME_HOME/data"
    for f in "$REPO"/notebooks/*.ipynb "$REPO/data/train_data.csv" "$REPO/data/README.md"; do
      dir="$GAME_HOME/$(basename "$(dirname "$f")")"
      [ -e "$dir/$(basename "$f")" ] || install -o "$SERVICE_USER" -g "$SERVICE_USER" -m 600 "$f" "$dir/"
    done
  fi
fi

step "the systemd units"
# 6. The systemd units of the game server (enabled only when systemd runs): systemd holds
# the game's port (the .socket) and hands it to the game, so no other user can listen on it
# while the game restarts (game_server/processes/activation.py, docs/SECURITY.md).
socket_text() {
  cat <<EOF
[Unit]
Description=Workshop game server's port, held across the game's restarts

[Socket]
ListenStream=127.0.0.1:$GAME_PORT
NoDelay=true

[Install]
WantedBy=sockets.target
EOF
}
unit_text() {
  cat <<EOF
[Unit]
Description=Workshop game server (the customer, leaderboard and API)
After=network.target postgresql.service game-server.socket
Requires=game-server.socket

[Service]
User=$SERVICE_USER
EnvironmentFile=$ENV_FILE
WorkingDirectory=/var/lib/game-server
UMask=0077
# Loopback only: tokens and the instructor's session never cross the room's network in
# clear; the projector and the teams reach the pages through SSH tunnels (docs/SECURITY.md).
ExecStart=$GAME_VENV/bin/game-server run --host 127.0.0.1 --port $GAME_PORT
# game-server run exits 0 only when stopped (SIGTERM, Ctrl-C); any other end is non-zero: restarted.
Restart=on-failure
RestartSec=2
# A team's runaway notebook, not the game, is what the OOM killer picks (game_server/processes/oom.py).
OOMScoreAdjust=-900
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true

[Install]
WantedBy=multi-user.target
EOF
}
if [ ! -f "$UNIT" ] || ! unit_text | cmp -s - "$UNIT" \
  || [ ! -f "$SOCKET_UNIT" ] || ! socket_text | cmp -s - "$SOCKET_UNIT"; then
  if [ "$check" -eq 1 ]; then todo "systemd units $UNIT and $SOCKET_UNIT"; else
    say "writing $UNIT and $SOCKET_UNIT"; unit_text > "$UNIT"; socket_text > "$SOCKET_UNIT"
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload; systemctl enable game-server.socket game-server
    fi
  fi
fi

step "PostgreSQL last for the OOM killer (where systemd runs)"
# 7. PostgreSQL's postmaster last for the OOM killer (its backends stay killable), where
# systemd runs; it takes effect at PostgreSQL's next start (never restarted here).
# Elsewhere `game-server doctor` says how to lower the running postmaster's score.
PG_DROPIN=/etc/systemd/system/postgresql@.service.d/workshop-oom.conf
pg_dropin_text() {
  printf '%s\n' "[Service]" "OOMScoreAdjust=-900" \
    "Environment=PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj PG_OOM_ADJUST_VALUE=0"
}
if [ -d /run/systemd/system ] && { [ ! -f "$PG_DROPIN" ] || ! pg_dropin_text | cmp -s - "$PG_DROPIN"; }; then
  if [ "$check" -eq 1 ]; then todo "$PG_DROPIN (PostgreSQL last for the OOM killer)"; else
    say "writing $PG_DROPIN (applies at PostgreSQL's next start)"
    mkdir -p "$(dirname "$PG_DROPIN")"; pg_dropin_text > "$PG_DROPIN"; systemctl daemon-reload
  fi
fi

say "   ... $((SECONDS - step_started)) s (all steps: $SECONDS s)"

# A game database that still holds a finished game is no fault, but worth a line.
if pg_up && [ "$(as_postgres psql -X -Atq -d "$GAME_DB" -c "SELECT state FROM games" 2>/dev/null)" = finished ]; then
  say "note: database $GAME_DB holds a finished game: \`game-server new\` starts a fresh one"
fi

if [ "$check" -eq 1 ]; then
  if [ "$missing" -eq 0 ]; then say "everything is in place"; exit 0; fi
  say "$missing thing(s) missing: run sudo scripts/setup_server.sh"; exit 1
fi
say "done; next, the game database (then the teams: docs/INSTRUCTOR.md, The day before):"
echo "  sudo sh -c 'set -a; . $ENV_FILE; game-server new --game workshop'"
