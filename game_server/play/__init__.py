"""Play: the customer that asks every team, the rules that score the answers, the game loop.

Owns the wire formats (`protocols`), scoring one exchange and the latency rule (`scoring`,
with `Result`, a team's scored answer), the host allow-list (`hosts`, `resolver`), the
team registry (`teams`), the HTTP fan-out (`customer`), the loop that runs a game
(`loop`), its database thread (`writer`), the teams' recent windows (`window`), the
lobby's probe of the teams' health routes (`lobby`) and the loop's Prometheus metrics
(`metrics`).

May import: `scenario`, `storage`, `team_names`. The pure rules (`scoring`, `protocols`)
import nothing that does I/O; `storage` may import `scoring` back (its records).
"""
