"""Accounts: provisioning the teams' Linux accounts, homes, ports and PostgreSQL roles.

Owns, module by module:
- `cli`: the `game-server users` commands (create, delete, list, check); thin.
- `config`: `Settings` of a run, `AccountsError`, and `kit_path` (the starter, the data and
  the init SQL: from the checkout, else the installed package data).
- `roster`: the roster CSV, validated before anything changes.
- `executors`: where commands run: the `Executor` protocol, `LocalExecutor`, `SSHExecutor`;
  `bounded`: a local command with a deadline and bounded output.
- `files`: files on the server: root's own, and in a team's home only as the team user
  (atomic writes; bounded reads that follow no link and accept only the team's own file).
- `registry`: the provisioning registry on the server (the teams `create` made; no secret),
  and each team's journal while its provisioning is under way.
- `game_cli`: the game's `teams` commands, run on the server.
- `state`: the actual state (users, ports, roles and schemas, the game's teams, files).
- `plan`: the `Step` enum, `TeamPlan`, `make_plan` (only the differences).
- `apply`: one function per `Step`, `apply_plan` runs a plan in order; the init SQL.
- `starter`: what a home gets: the participant starter and its `.env` (`make_url`).
- `levels`: the starter's two levels (`complete`, `exercises`) from its one source;
  `markers`: the marker lines that hold both levels in one file.
- `login_shell`: the team's login-shell snippet in /etc/profile.d (venv on PATH, the
  `.env`'s keys exported).
- `provision`: `create`: plan, apply with the journal, record in the handout and registry.
- `teardown`: `delete`; `checks`: `check`, logging in as each team for real.
- `pgsql`: every SQL statement (quoting, SCRAM verifiers, roles, schemas, probes).
- `handout`: the instructor's handout (0600 JSON read back by re-runs, printable cards).

May import: `common` only (`team_names`, `logs`, `state_dir`, `settings` and `extras`; and
SQLAlchemy's URL, paramiko: only where SSH is used, as the game's own install has no
paramiko; `extras`). It
talks to the game through the `game-server` command, never through `storage`, `play` or
`web`, so it also works from the instructor's laptop over SSH.
"""
