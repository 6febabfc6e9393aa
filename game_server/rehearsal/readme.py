"""The participant's day as the bots live it: the README's server blocks, as scripts.

The participant README (participant_starter/README.md) marks its shell blocks (`bash`;
tags `laptop` and `long-running`, tests/readme_blocks.py says the conventions). A bot
runs, in its team's login shell: every server block up to the feedback step, with the
long-running Jupyter started in tmux (as a participant keeps it open all day) and the
other long-running ones (the debug server) left out; then, during the game, the
feedback step, a retraining with the notebook and the API's restart, again and again.
"""

import re
from typing import NamedTuple

from game_server.accounts.config import kit_path

FENCE = re.compile(r"^ {0,3}(`{3,})(.*)$")
FEEDBACK, RETRAIN, RESTART = "feedback.py", "nbconvert", "C-c"


def server_blocks(markdown: str) -> list[tuple[list[str], str]]:
    """The README's command blocks run on the server, in order: (tags, text)."""
    found, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        fence, (language, *tags) = opening.group(1), (opening.group(2).split() or [""])
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        if language == "bash" and "laptop" not in tags:
            found.append((tags, "\n".join(body) + "\n"))
    return found


def _jupyter_in_tmux(text: str) -> str:
    """The README's `jupyter lab` as a participant keeps it: running in a tmux session."""
    command = text.strip().replace("'", "")
    return f"tmux has-session -t jupyter 2>/dev/null || tmux new -d -s jupyter '{command}'\n"


class DayScripts(NamedTuple):
    """A bot's shell scripts: before the game, and for each retraining during it."""

    before: str
    during: str


def day_scripts(markdown: str | None = None) -> DayScripts:
    """(before the game, each retraining during it): shell scripts for a login shell."""
    if markdown is None:
        markdown = kit_path("participant_starter/README.md").read_text()
    before, seen_feedback = ["set -e", "cd ~"], False
    feedback = retrain = restart = ""
    for tags, text in server_blocks(markdown):
        seen_feedback = seen_feedback or FEEDBACK in text
        if "long-running" in tags:
            if "jupyter lab" in text and not seen_feedback:
                before.append(_jupyter_in_tmux(text))
            continue
        if not seen_feedback:
            before.append(text)
            retrain = retrain or (text if RETRAIN in text else "")
        feedback = feedback or (text if FEEDBACK in text else "")
        restart = restart or (text if seen_feedback and RESTART in text else "")
    if not (feedback and retrain and restart):
        raise ValueError("the README has no feedback, notebook training or API restart block")
    during = ["set -e", "cd ~/participant_starter", feedback, retrain, restart]
    return DayScripts("\n".join(before) + "\n", "\n".join(during) + "\n")
