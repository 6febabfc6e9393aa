"""The web app: the public pages, the instructor page, the JSON API and the deck.

Owns `app` (`create_app`: config, blueprints, security headers), `db` (the app's database
engine), one blueprint per module (`pages`, `admin`, `api` for the public and team JSON
API, `api_admin` for the instructor's JSON API) and their helpers (`jsonapi`, `auth`,
`sessions`, `ratelimit`, `cache`, `monitoring`, `drift`). Imports inside go one way:
`app`, then the blueprints, then the helpers, then `db` and `drift` (a contract in
pyproject.toml).

May import: `storage`, `scenario`, `common`, the registry and the pure rules of `play`,
never the game loop or the customer (the pages only read the database and write control
actions).
"""
