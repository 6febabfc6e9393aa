"""What a team name may be: one rule for the roster, `teams add` and the admin page.

Pure: imports nothing of `game_server`, so every part may use it.
"""

# Names are shown on the projector, so people may pick any printable name ("Los Niños",
# "R&D!"); the pages escape them. Only what breaks a line, a URL path, a log, a database
# (PostgreSQL refuses NUL in text) or a command line is refused: control characters of
# any kind, '/' (the team page's URL), ':' (useradd refuses it in the account's comment),
# a leading '-' (a command would read the name as an option).
NAME_MAX = 40
NAME_RULE = (
    f"1-{NAME_MAX} printable characters, no control characters, no '/' or ':', "
    "not starting with '-', not starting or ending with a space"
)


def name_ok(name: str) -> bool:
    """Whether `name` is a valid team name (see NAME_RULE)."""
    return (
        looks_like_a_name(name)
        and "/" not in name
        and ":" not in name
        and not name.startswith("-")
        and name == name.strip()
    )


def looks_like_a_name(name: str) -> bool:
    """Whether `name` could name a team at all, by today's rule or an older one.

    For look-ups: a path with NUL or a lone surrogate is a 404 before any query (the
    database would refuse it), while a team registered under an older, looser rule is
    still found.
    """
    # isprintable() refuses Unicode's "Other" categories (controls: NUL, DEL, C1; format
    # characters; lone surrogates; private use) and every separator but the space.
    return 0 < len(name) <= NAME_MAX and name.isprintable()
