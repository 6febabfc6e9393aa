"""The fenced code blocks of a Markdown guide, sorted by where and how they run.

So that a test can run a guide as a reader follows it, the guides
(participant_starter/README.md first) write their code blocks by these conventions:

- A *command block* is a fenced block whose info string starts with `bash`. Every other
  block (a folder tree, JSON, CSV, TOML) is not run.
- Words after `bash` in the info string are tags (Markdown renderers ignore them):
  - `laptop`: typed on the reader's own computer (`ssh`, a tunnel, the set-up of a
    laptop without the workshop server); never run on the server. A test skips them.
  - `long-running`: one command that runs until it is stopped (Jupyter, a server in the
    foreground). A test starts it in the background and stops it, or replaces it
    (`jupyter lab` by executing the notebook).
- Every other command block is a *server block*: typed on the server in the order of the
  guide, in one login shell of the team, starting in the home directory. Each command runs
  to completion and exits 0; state carries from one block to the next (the `cd`).
- A command may go on over several lines with a trailing backslash; `#` starts a comment.
"""

import re
import shlex
from dataclasses import dataclass

LAPTOP = "laptop"
LONG_RUNNING = "long-running"
FENCE = re.compile(r"^( {0,3})(`{3,})(.*)$")
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts, its language, its tags and its text."""

    line: int  # the line of the opening fence, counted from 1
    language: str
    tags: frozenset[str]
    text: str

    @property
    def is_command(self) -> bool:
        """A block of shell commands (`bash`)."""
        return self.language == "bash"

    @property
    def commands(self) -> list[str]:
        """The block's commands: continued lines joined, comment-only and blank lines left out."""
        joined = self.text.replace("\\\n", "")  # as bash joins a continued line
        return [line.strip() for line in joined.splitlines() if words(line)]


def parse(markdown: str) -> list[Block]:
    """Every fenced block of `markdown`, in order; ValueError for a fence left open."""
    found, lines, index = [], markdown.splitlines(), 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if not opening:
            continue
        indent, fence, info = opening.groups()
        start, body = index, []
        while index < len(lines) and not re.match(rf"^ {{0,3}}{fence}`*\s*$", lines[index]):
            body.append(
                lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index]
            )
            index += 1
        if index == len(lines):
            raise ValueError(f"line {start}: a code fence that is never closed")
        index += 1
        language, *tags = info.split() or [""]
        found.append(Block(start, language, frozenset(tags), "\n".join(body) + "\n"))
    return found


def server_blocks(markdown: str) -> list[Block]:
    """The command blocks run on the server, in order (long-running ones included)."""
    return [b for b in parse(markdown) if b.is_command and LAPTOP not in b.tags]


def laptop_blocks(markdown: str) -> list[Block]:
    """The command blocks typed on the reader's own computer."""
    return [b for b in parse(markdown) if b.is_command and LAPTOP in b.tags]


def long_running(markdown: str) -> list[str]:
    """The commands that run until stopped, in order (one per long-running block)."""
    return [c for b in server_blocks(markdown) if LONG_RUNNING in b.tags for c in b.commands]


def strip_comment(line: str) -> str:
    """The line without its comment: a `#` that starts a word, outside quotes (as in bash)."""
    quote, previous = None, " "
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            return line[:index].rstrip()
        previous = char
    return line


def words(command: str) -> list[str]:
    """A command's words as the shell splits them, comments left out, operators apart."""
    lexer = shlex.shlex(strip_comment(command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # done by strip_comment: `#` inside a word is no comment
    return list(lexer)


def programs(command: str) -> list[str]:
    """The programs a command line calls: the first word of each simple command in it."""
    found, expect = [], True
    for word in words(command):
        if word in OPERATORS:
            expect = True
        elif expect and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):  # not VAR=value
            found.append(word)
            expect = False
    return found
