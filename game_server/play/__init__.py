"""Play: the customer that asks every team, the rules that score the answers, the game loop.

Owns the wire formats (`protocols`), scoring one exchange (`scoring`), the host allow-list
(`hosts`), the team registry (`teams`), the HTTP fan-out (`customer`) and the loop that
runs a game (`loop`).

May import: `scenario`, `storage`, `team_names`. The pure rules (`scoring`, `protocols`)
import nothing that does I/O.
"""
