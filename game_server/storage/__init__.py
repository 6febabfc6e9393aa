"""Storage: the game database, the only state shared between the game's processes.

Owns the tables, each declared once (`schema`); the URL, the engine, creating the database
with its game file and the web workers' shared settings (`database`); the `games` row, its
one writer, with the lease of the game loop (`games`) and the phase clock's arithmetic
(`clock`, pure); the control actions (`control`); the round write path (`writes`); the
reveal of the labels to the public totals (`reveal`); the public standings
(`standings`); the team pages', feedback's and monitoring's reads (`queries`); and the
export of a game (`export`).

Import the modules themselves (`from game_server.storage import games, writes`): there
is no facade.

May import: `scenario` (the game file), and of `play` only the pure `scoring` (the
records `writes` persists and the latency rule; an `ignore_imports` line of the layers
contract says so). Never `web`, `accounts`, `demo`, the customer or the game loop.
"""
