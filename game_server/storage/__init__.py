"""Storage: the game database, the only state shared between the game's processes.

Owns the tables and the engine (`database`), the state transitions of the `games` row
(`control`) and the export of a game (`export`).

May import: the pure rules of `play` (`scoring`), `scenario`. Never `web`, `accounts`,
`demo` or the game loop.
"""
