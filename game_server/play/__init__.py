"""Play: the customer that asks every team, the rules that score the answers, the game loop.

Owns the wire formats (`protocols`), scoring one exchange (`scoring`: a `records.Score`),
the host allow-list (`hosts`, `resolver`), a team's registration checks (`teams`; the
tables are `storage.teams`), the HTTP fan-out (`customer`), the loop that runs a game
(`loop`), the event its rounds' results are fired on (`events`), its database thread
(`writer`), the teams' recent windows (`window`), the lobby's probe of the teams' health
routes (`lobby`) and the loop's Prometheus metrics (`metrics`).

May import: `scenario`, `storage` and `common` (`records`, `team_names`, `logs`,
`supervisor`...). The pure rules (`scoring`, `protocols`) import nothing that does I/O.
Nothing below imports `play` back: the records it hands to storage live in
`game_server.common.records`.
"""
