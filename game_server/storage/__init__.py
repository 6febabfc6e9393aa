"""Storage: the game database, the only state shared between the game's processes.

Owns the tables, each declared once (`schema`); the URL, the engine, creating the database
with its game file and the web workers' shared settings (`database`); the `games` row, its
one writer, with the lease of the game loop (`games`) and the phase clock's arithmetic
(`clock`, pure); the control actions (`control`); the team registry's tables (`teams`);
the round write path (`writes`); the reveal of the labels to the public totals
(`reveal`); the public standings (`standings`); the team pages', feedback's and
monitoring's reads (`queries`); the lobby's latest probe of each team's API (`health`);
and the export of a game (`export`).

Import the modules themselves (`from game_server.storage import games, writes`): there
is no facade.

May import: `scenario` (the game file) and `common`: `records` (what the loop hands it:
the requests, the scored rounds, the latency rule), `team_names`, `settings`. Never
`play`, `web`, `accounts` or `demo`.
"""
