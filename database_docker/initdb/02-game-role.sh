#!/usr/bin/env bash
# Give the game server's role its password, from the environment (never from a file in
# the repository). Run by the postgres image after 01-workshop.sql on the first start, and
# by scripts/setup_server.sh on a server without Docker. Environment:
#   GAME_DB_PASSWORD  the password (required): 16+ of letters, digits, . _ ~ -
#                     (characters that need no escaping in a database URL)
#   GAME_ROLE         the game's role [game_server], as created by 01-workshop.sql
# psql connects as $POSTGRES_USER (the image's superuser), else $PGUSER, else postgres.
set -euo pipefail

if [ -z "${GAME_DB_PASSWORD:-}" ]; then
  echo "02-game-role.sh: GAME_DB_PASSWORD is not set (database_docker/.env)" >&2
  exit 1
fi
if ! [[ "$GAME_DB_PASSWORD" =~ ^[A-Za-z0-9._~-]{16,}$ ]]; then
  echo "02-game-role.sh: GAME_DB_PASSWORD must be 16+ of letters, digits, . _ ~ -" >&2
  exit 1
fi

# The password reaches psql through its environment (\getenv), not its command line, and
# the statement that carries it is kept out of the server's log.
psql -X -q -v ON_ERROR_STOP=1 --no-password --username "${POSTGRES_USER:-${PGUSER:-postgres}}" \
  --dbname postgres -v "game_role=${GAME_ROLE:-game_server}" <<'SQL'
\getenv game_password GAME_DB_PASSWORD
SET log_statement = 'none';
SET password_encryption = 'scram-sha-256';
SELECT format('ALTER ROLE %I PASSWORD %L', :'game_role', :'game_password') \gexec
SQL
echo "02-game-role.sh: password set for role ${GAME_ROLE:-game_server}"
