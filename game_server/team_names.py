"""What a team name may be: one rule for the roster, `teams add` and the admin page.

Pure: imports nothing of `game_server`, so every part may use it.
"""

# Names are shown on the projector, so people may pick any printable name ("Los Niños",
# "R&D!"); the pages escape them. Only what breaks a line, a URL path or a log is refused.
NAME_MAX = 40
NAME_RULE = f"1-{NAME_MAX} printable characters, no '/', not starting or ending with a space"


def name_ok(name: str) -> bool:
    """Whether `name` is a valid team name (see NAME_RULE)."""
    return (
        0 < len(name) <= NAME_MAX
        and name.isprintable()
        and "/" not in name
        and name == name.strip()
    )
