"""The SQL of team provisioning: quoting, SCRAM verifiers, a team's role and schema, checks.

Every statement is text sent on psql's stdin (never on a command line), identifiers are
quoted with `quote_ident` and values with `quote_literal`. A role's password is sent as a
SCRAM-SHA-256 verifier computed here (RFC 5802 / RFC 7677, the format PostgreSQL stores),
so the plain password never reaches the server or its logs.

A team role: LOGIN, NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, INHERIT
(it must inherit CONNECT on the workshop database from the base role `workshop_team`, which
holds nothing else), CONNECTION LIMIT 5, statement_timeout 30s, search_path its own schema.
Its schema is `AUTHORIZATION` the role, with every right of PUBLIC revoked, so no other
team can even look up a name in it.
"""

import base64
import hashlib
import hmac
import os
from typing import NamedTuple

BASE_ROLE = "workshop_team"
CONNECTION_LIMIT = 5
STATEMENT_TIMEOUT = "30s"
SCRAM_ITERATIONS = 4096


def quote_ident(name: str) -> str:
    """`name` as a PostgreSQL identifier: in double quotes, inner quotes doubled."""
    if "\0" in name:
        raise ValueError("an identifier cannot hold a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """`value` as a standard-conforming string literal: in single quotes, inner ones doubled."""
    if "\0" in value:
        raise ValueError("a string literal cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


class ScramKeys(NamedTuple):
    """The StoredKey and ServerKey of RFC 5802: what a SCRAM verifier holds."""

    stored_key: bytes
    server_key: bytes


def scram_keys(password: str, salt: bytes, iterations: int) -> ScramKeys:
    """The keys of RFC 5802 for `password` (PostgreSQL skips SASLprep for ASCII)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramKeys(hashlib.sha256(client_key).digest(), server_key)


def scram_verifier(
    password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), as pg_authid keeps."""
    salt = os.urandom(16) if salt is None else salt
    stored, server = scram_keys(password, salt, iterations)
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored).decode()}:{b64(server).decode()}"
    )


def create_team_sql(role: str, schema: str, verifier: str) -> str:
    """Create a team's role (in the base role) and its private schema, in one transaction."""
    r, s = quote_ident(role), quote_ident(schema)
    return f"""BEGIN;
CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
  CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD {quote_literal(verifier)};
GRANT {quote_ident(BASE_ROLE)} TO {r};
ALTER ROLE {r} SET statement_timeout = {quote_literal(STATEMENT_TIMEOUT)};
ALTER ROLE {r} SET search_path = {s};
CREATE SCHEMA {s} AUTHORIZATION {r};
REVOKE ALL ON SCHEMA {s} FROM PUBLIC;
COMMIT;
"""


def create_schema_sql(role: str, schema: str) -> str:
    """Create a team's private schema again (its role still exists)."""
    r, s = quote_ident(role), quote_ident(schema)
    return f"CREATE SCHEMA {s} AUTHORIZATION {r};\nREVOKE ALL ON SCHEMA {s} FROM PUBLIC;\n"


def set_password_sql(role: str, verifier: str) -> str:
    """Give a team's role a new password (as a verifier)."""
    return f"ALTER ROLE {quote_ident(role)} PASSWORD {quote_literal(verifier)};\n"


def drop_team_sql(role: str, schema: str, reassign_to: str = "postgres") -> str:
    """Drop a team's schema and role, whatever it owns reassigned first (each step if present)."""
    r, s = quote_literal(role), quote_ident(schema)
    exists = f"WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = {r})"
    return f"""DROP SCHEMA IF EXISTS {s} CASCADE;
SELECT format('REASSIGN OWNED BY %I TO %I', {r}, {quote_literal(reassign_to)}) {exists} \\gexec
SELECT format('DROP OWNED BY %I', {r}) {exists} \\gexec
SELECT format('DROP ROLE %I', {r}) {exists} \\gexec
"""


def state_sql(prefix: str) -> str:
    """List the roles and schemas starting with `prefix` as `role|name` / `schema|name` lines."""
    like = quote_literal(prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%")
    return f"""SELECT 'role|' || rolname FROM pg_roles WHERE rolname LIKE {like};
SELECT 'schema|' || nspname FROM pg_namespace WHERE nspname LIKE {like};
SELECT 'base|' || rolname FROM pg_roles WHERE rolname = {quote_literal(BASE_ROLE)};
"""


def database_sql(name: str) -> str:
    """A `db|name` line when database `name` exists (nothing otherwise)."""
    return f"SELECT 'db|' || datname FROM pg_database WHERE datname = {quote_literal(name)};\n"


# A team role must have none of these (each is a way out of its schema).
RISKY_ROLE_FLAGS = ("rolsuper", "rolbypassrls", "rolcreaterole", "rolcreatedb", "rolreplication")


def role_flags_sql(roles: list[str]) -> str:
    """A `role|flag,flag` line per existing role of `roles`: the RISKY_ROLE_FLAGS it has."""
    flags = ", ".join(f"CASE WHEN {col} THEN {quote_literal(col)} END" for col in RISKY_ROLE_FLAGS)
    names = ", ".join(quote_literal(r) for r in roles)
    return (
        f"SELECT rolname || '|' || concat_ws(',', {flags}) FROM pg_roles "
        f"WHERE rolname IN ({names});\n"
    )


PROBES = {
    "own_schema": "CREATE TABLE {own}.gs_check_probe (x int)",
    "public_create": "CREATE TABLE public.gs_check_probe (x int)",
    "other_schema_read": "SELECT count(*) FROM {other}.gs_check_probe",
    "other_schema_create": "CREATE TABLE {other}.gs_check_probe (x int)",
}
EXPECTED = {
    "own_schema": "allowed",
    "public_create": "denied",
    "other_schema_read": "denied",
    "other_schema_create": "denied",
}


def isolation_sql(own: str, other: str | None) -> str:
    """A script run as a team role: a `probe|NAME|allowed|denied|error: ...` notice per probe.

    Each probe runs in a sub-transaction that is always rolled back, so nothing it creates
    stays behind, whatever the outcome.
    """
    lines = []
    for name, template in PROBES.items():
        if "{other}" in template and other is None:
            continue
        stmt = template.format(own=quote_ident(own), other=quote_ident(other or ""))
        lines.append(
            f"DO $gs$ BEGIN EXECUTE {quote_literal(stmt)}; RAISE EXCEPTION 'gs_allowed'; "
            f"EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'probe|{name}|denied'; "
            f"WHEN raise_exception THEN RAISE NOTICE 'probe|{name}|allowed'; "
            f"WHEN OTHERS THEN RAISE NOTICE 'probe|{name}|error: %', SQLERRM; END $gs$;"
        )
    return "\n".join(lines) + "\n"


def parse_probes(stderr: str) -> dict[str, str]:
    """The probes' outcomes from psql's notices: {probe: allowed | denied | error: ...}."""
    found = {}
    for line in stderr.splitlines():
        _, sep, rest = line.partition("probe|")
        if sep:
            name, _, outcome = rest.partition("|")
            found[name] = outcome.strip()
    return found
