"""Accounts: provisioning the teams' Linux accounts, homes, ports and PostgreSQL roles.

Owns the roster CSV (`roster`), where commands run (`executors`, local or SSH), the plan
and its steps (`provision`), the SQL of a team's role (`pgsql`), the instructor's handout
(`handout`) and the `game-server users` commands (`cli`).

May import: `team_names` only. It talks to the game through the `game-server` command,
never through `storage`, so it also works from the instructor's laptop over SSH.
"""
