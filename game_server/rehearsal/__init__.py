"""`game-server rehearse`: the workshop's day at its real size, the day before (issue 23).

N temporary teams provisioned through the same roster path as the real ones, each a bot
that lives the participant's day over SSH as the README says, a compressed whole game
against them, one verdict, then every trace removed. See docs/INSTRUCTOR.md, "A dress
rehearsal, and how big a server".

May import: `accounts` (the same roster path and `users delete`), `storage` (the game's
results), `scenario` (the game file), `common` (`extras`: its bots need the accounts
extra, so `cli` imports the rest only when it runs; `sizing`, `settings`); it drives the
game through its command line.
"""
