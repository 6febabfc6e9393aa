"""The game's long-running processes: what `game-server run` and `game-server web` run.

Owns `serve` (`run`: the game loop in this process, the web app as its child process, the
metrics child), `webserver` (`web`: the web app served by waitress, in a thread or in N
forked workers on one socket), `activation` (the listening socket systemd passes, so the
game's port stays held across restarts) and `oom` (the OOM killer kept off the game, and
the doctor's look at PostgreSQL's postmaster).

May import: `web`, `play`, `storage`, `scenario` and `common`. Imported by `cli` (`run`
and `web` import `serve` and `webserver` only when they run) and by `demo` (`serve.run`),
never by the parts below. Inside, imports go one way: `serve`, then `webserver`, then
`activation` and `oom` (a contract in pyproject.toml).
"""
