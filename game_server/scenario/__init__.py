"""The scenario: who applies, what is true about them, and what the customer asks when.

Owns the seeded applicant generator and its hidden truth (`population`), the messy-input
transformations (`oddities`), the TOML game files (`gamefile`, the builtin ones in
`games/`), the stream of applicants per phase with the oracle and baseline (`stream`), and
bring-your-own data (`owndata`).

May import: nothing else of `game_server` (pure rules on numpy and pandas; no database,
no web, no network).
"""
