"""The command line: `game-server` (and `python -m game_server`), one click group.

Owns the group and its global options (`main`: the console script's entry point, the
composition root that adds every command), and the commands, a module per sub-group or
set of commands: `data` (generate, split), `game` (check, keys), `control` (the game's
state), `database` (`init`, `new`, `export`), `run` (`run` and `web`: they start the
game's processes), `teams` (`teams` and `allow`) and `doctor` (is this server ready);
`shared` is what they share (the database `--db` chooses, a game file by name). The
`users`, `demo` and `rehearse` commands are declared in their parts and added here.

May import: everything; thin: it parses arguments and calls the parts. Nothing imports it
but `game_server.__main__`. Inside, imports go one way: `main`, then the commands' modules
(none imports another), then `shared` (a contract in pyproject.toml).
"""
