-- The workshop's shared PostgreSQL set-up: nothing team-specific (teams are added by
-- `game-server users create`). The one source of truth, applied by scripts/setup_server.sh,
-- by `game-server users create` (when the database or base role is missing) and by the
-- docker-compose file that mounts this folder into /docker-entrypoint-initdb.d.
-- Safe to run twice. psql variables (defaults in brackets):
--   workshop_db [workshop]   the database that holds one schema per team
--   game_db     [game]       the game server's database: no team may connect to it
\if :{?workshop_db}
\else
\set workshop_db workshop
\endif
\if :{?game_db}
\else
\set game_db game
\endif

-- The base role every team role joins; it can log in nowhere by itself.
SELECT 'CREATE ROLE workshop_team NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'workshop_team') \gexec

SELECT format('CREATE DATABASE %I', :'workshop_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'workshop_db') \gexec

-- Only team roles (through workshop_team) and the owner may connect to the workshop database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'workshop_db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO workshop_team', :'workshop_db') \gexec

-- Nobody but the game server's owner may connect to the game's database (when it is here).
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'game_db')
WHERE EXISTS (SELECT FROM pg_database WHERE datname = :'game_db') \gexec

-- In the workshop database nobody creates in public (PostgreSQL 15's default, made
-- explicit for older servers); each team gets a schema of its own instead.
\connect :"workshop_db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
