"""Common: the bottom layer every part may import, and which imports no part.

Owns `settings` (every environment variable, declared once), `logs` (one-line log
records), `extras` (the optional parts of the install), `state_dir` (the private folder
for handouts and exports), `team_names` (the one rule for a team's name), `records` (the
records of a round: play hands them to storage, so neither imports the other), `sizing`
(cores and memory for N teams, from `make bench-rehearsal`), `supervisor` (every child
process of the game: started, restarted, stopped, a hung one replaced) and `connections`
(a waitress server at its connection limit closes its idlest connection).

May import: nothing else of `game_server`. Inside, imports go one way: `records` and
`sizing`; then `team_names`, `logs`, `supervisor`, `state_dir` and `extras`; then
`connections`; then `settings`, which imports nothing of the game (the layers contract in
pyproject.toml). `records` and `team_names` are pure: no I/O.
"""
