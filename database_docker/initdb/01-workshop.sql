-- The workshop's shared PostgreSQL set-up: the game's database and role, the teams'
-- database and base role, the hardening of `public`; nothing team-specific (teams are added
-- by `game-server users create`). The one source of truth, applied by scripts/setup_server.sh,
-- by `game-server users create` (when the teams' database or base role is missing) and by
-- docker-compose.yml, which mounts this folder into /docker-entrypoint-initdb.d.
-- No password here: 02-game-role.sh sets the game role's password from the environment.
-- Idempotent: a second run succeeds and changes nothing. psql variables [defaults]:
--   workshop_db [workshop]     the database that holds one schema per team
--   game_db     [game]         the game server's database: no team may connect to it
--   game_role   [game_server]  the game server's own role, owner of game_db
\if :{?workshop_db}
\else
\set workshop_db workshop
\endif
\if :{?game_db}
\else
\set game_db game
\endif
\if :{?game_role}
\else
\set game_role game_server
\endif

-- The base role every team role joins; it can log in nowhere by itself.
SELECT 'CREATE ROLE workshop_team NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'workshop_team') \gexec

-- The game server's role: it logs in (once 02-game-role.sh gave it a password) and owns
-- the game's database, nothing more.
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS',
              :'game_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'game_role') \gexec

SELECT format('CREATE DATABASE %I', :'workshop_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'workshop_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'game_db', :'game_role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'game_db') \gexec
-- A game database made earlier by hand becomes the game role's too.
SELECT format('ALTER DATABASE %I OWNER TO %I', :'game_db', :'game_role')
WHERE EXISTS (SELECT FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
              WHERE d.datname = :'game_db' AND r.rolname <> :'game_role') \gexec

-- Only team roles (through workshop_team) and the owner may connect to the workshop database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'workshop_db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO workshop_team', :'workshop_db') \gexec

-- Nobody but the game role (its owner) and superusers may connect to the game's database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'game_db') \gexec

-- In the game database the game role owns `public` (as PostgreSQL 15+ makes the database
-- owner do; explicit for older servers) and nobody else creates there.
\connect :"game_db"
SELECT format('ALTER SCHEMA public OWNER TO %I', :'game_role')
WHERE (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public')
      <> quote_ident(:'game_role') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- In the workshop database nobody creates in public (PostgreSQL 15's default, made
-- explicit for older servers); each team gets a schema of its own instead.
\connect :"workshop_db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
