"""Markers: how one file of the participant starter holds both of its levels.

Markers are whole lines in the file's own comment syntax (`#` in Python and notebook code
cells, `<!-- ... -->` in Markdown and notebook Markdown cells). No level keeps one.

    # EXERCISE 3 BEGIN: <hint>      the solution of exercise 3, up to ...
    # EXERCISE 3 END                ... here; the exercise level has, in its place, the stub
                                    raise NotImplementedError("Exercise 3: <hint>")
    # COMPLETE BEGIN / END          lines only the complete level has
    # EXERCISES BEGIN / END         lines only the exercise level has, commented out in the
                                    source: `# ` before each line (in Markdown the block is one
                                    comment, from `<!-- EXERCISES BEGIN` to `EXERCISES END -->`)
    # EXERCISES REPLACE "a" WITH "b"    the exercise level has `b` for `a` in the one line of
                                    both levels that holds it: for a line that cannot hold a
                                    marker, such as a Markdown table row

`split` returns a text at both levels and the `Change`s that turn the exercise text back
into the complete one; `fill` applies them. Pure functions of text (levels.py reads files).
"""

import json
import re
from dataclasses import dataclass

HASH_SUFFIXES = (".py", ".ini", ".txt", ".toml", ".cfg", ".sh", ".example")

EXERCISE_BEGIN = re.compile(r"EXERCISE (\d+) BEGIN: ([^\"\\]+)")
REPLACE = re.compile(r'EXERCISES REPLACE ("(?:[^"\\]|\\.)*") WITH ("(?:[^"\\]|\\.)*")')
LINE_LENGTH = 100  # a longer stub is written over three lines, as ruff formats it


class MarkerError(ValueError):
    """A marker that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Syntax:
    """How a marker line is written in one kind of text."""

    opening: str  # "#" or "<!--"
    closing: str  # "" or "-->"

    def marker(self, line: str) -> str | None:
        """The marker's words when `line` is a marker line (a comment starting in capitals)."""
        text = line.strip()
        if not (text.startswith(self.opening) and text.endswith(self.closing)):
            return None
        words = text[len(self.opening) : len(text) - len(self.closing)].strip()
        return words if re.match(r"(EXERCISES?|COMPLETE) ", words) else None


HASH = Syntax("#", "")
HTML = Syntax("<!--", "-->")


@dataclass(frozen=True)
class Change:
    """Where the levels differ: lines [start, stop) of the exercise text are `lines` at
    the complete level (in notebook cell `cell`); `exercise` is the gap's number, if one."""

    start: int
    stop: int
    lines: tuple[str, ...]
    exercise: int | None = None
    cell: int | None = None


@dataclass
class _Segment:
    """A run of lines: the same at both levels (`shared`), or each level's own."""

    complete: list[str]
    exercises: list[str]
    exercise: int | None = None
    shared: bool = False


@dataclass(frozen=True)
class Split:
    """One text at both levels, and the changes that make the complete text from the other."""

    complete: str
    exercises: str
    changes: tuple[Change, ...]


# --- one text -------------------------------------------------------------------------------


def split(name: str, text: str) -> Split:
    """Both levels of the file `name` (its suffix says its comment syntax) with `text`."""
    if name.endswith(".ipynb"):
        return _split_notebook(name, text)
    syntax = syntax_of(name)
    if syntax is None:
        return Split(text, text, ())
    return _split_text(name, text, syntax)


def fill(name: str, exercises: str, changes: tuple[Change, ...] | list[Change]) -> str:
    """The exercise text with every change applied: the complete text."""
    if not changes:
        return exercises
    if name.endswith(".ipynb"):
        notebook = json.loads(exercises)
        for index, cell in enumerate(notebook["cells"]):
            mine = [c for c in changes if c.cell == index]
            if mine:
                cell["source"] = _lines(_apply("".join(cell["source"]), mine))
        return _dump(notebook)
    return _apply(exercises, list(changes))


def _apply(text: str, changes: list[Change]) -> str:
    """`text` with `changes` applied (a text that was padded with a newline is again)."""
    padded = bool(text) and not text.endswith("\n")
    lines = (text + "\n" if padded else text).splitlines(keepends=True)
    # From the end, so that the positions before stay right; of two changes at one place
    # (a COMPLETE block then an EXERCISES block), the later one first.
    order = sorted(enumerate(changes), key=lambda i_c: (i_c[1].start, i_c[1].stop, i_c[0]))
    for _, change in reversed(order):
        lines[change.start : change.stop] = change.lines
    done = "".join(lines)
    return done[:-1] if padded else done


def syntax_of(name: str) -> Syntax | None:
    """The comment syntax of a file, or None for a file that has no markers."""
    if name.endswith(".md"):
        return HTML
    return HASH if name.endswith(HASH_SUFFIXES) else None


def _split_text(where: str, text: str, syntax: Syntax, cell: int | None = None) -> Split:
    """Both levels of one text and the changes between them."""
    padded = bool(text) and not text.endswith("\n")  # every line ends with a newline
    segments = _segments((text + "\n" if padded else text).splitlines(keepends=True), syntax, where)
    complete: list[str] = []
    exercises: list[str] = []
    changes: list[Change] = []
    for segment in segments:
        if not segment.shared:
            stop = len(exercises) + len(segment.exercises)
            lines = tuple(segment.complete)
            changes.append(Change(len(exercises), stop, lines, segment.exercise, cell))
        complete += segment.complete
        exercises += segment.exercises

    def joined(lines: list[str]) -> str:
        out = "".join(lines)
        return out[:-1] if padded and out.endswith("\n") else out

    if padded and not exercises:
        raise MarkerError(f"{where}: the exercise level would leave it empty")
    return Split(joined(complete), joined(exercises), tuple(changes))


def _segments(lines: list[str], syntax: Syntax, where: str) -> list[_Segment]:
    """The text cut into shared runs and each marked block, REPLACE directives applied."""
    segments: list[_Segment] = []
    replaces: list[tuple[str, str, int]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        words = syntax.marker(line) if not _opens_html_block(line, syntax) else "EXERCISES BEGIN"
        if words is None:
            if segments and segments[-1].shared:
                segments[-1].complete.append(line)
                segments[-1].exercises.append(line)
            else:
                segments.append(_Segment([line], [line], shared=True))
            index += 1
        elif found := REPLACE.fullmatch(words):
            replaces.append((json.loads(found.group(1)), json.loads(found.group(2)), index + 1))
            index += 1
        else:
            end = _block_end(lines, index, words, syntax, where)
            segments.append(_block(lines[index : end + 1], words, syntax, f"{where}:{index + 1}"))
            index = end + 1
    for old, new, at in replaces:
        segments = _replace(segments, old, new, f"{where}:{at}")
    return segments


def _opens_html_block(line: str, syntax: Syntax) -> bool:
    """A Markdown exercise-only block opens with `<!-- EXERCISES BEGIN` (one comment)."""
    return syntax is HTML and line.strip() == "<!-- EXERCISES BEGIN"


def _end_words(words: str) -> str:
    """The marker that closes the block `words` opens."""
    found = EXERCISE_BEGIN.fullmatch(words)
    if found:
        return f"EXERCISE {found.group(1)} END"
    if words in ("COMPLETE BEGIN", "EXERCISES BEGIN"):
        return words.replace("BEGIN", "END")
    raise ValueError(words)


def _block_end(lines: list[str], begin: int, words: str, syntax: Syntax, where: str) -> int:
    """The index of the line that closes the block opening at `begin`."""
    try:
        closing = _end_words(words)
    except ValueError:
        raise MarkerError(f"{where}:{begin + 1}: a marker that opens nothing: {words}") from None
    html_block = _opens_html_block(lines[begin], syntax)
    for index in range(begin + 1, len(lines)):
        text = lines[index].strip()
        if html_block:
            if text == f"{closing} -->":
                return index
            if "-->" in text or text.startswith("```"):
                raise MarkerError(
                    f"{where}:{index + 1}: no comment end or code fence in this block"
                )
        elif syntax.marker(lines[index]) == closing:
            return index
        elif syntax.marker(lines[index]) is not None:
            raise MarkerError(f"{where}:{index + 1}: a marker inside {words!r}: blocks do not nest")
    raise MarkerError(f"{where}:{begin + 1}: {words!r} is never closed ({closing!r})")


def _block(lines: list[str], words: str, syntax: Syntax, where: str) -> _Segment:
    """One marked block (its marker lines included) as a segment."""
    body = lines[1:-1]
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    ending = lines[0][len(lines[0].rstrip("\r\n")) :]
    found = EXERCISE_BEGIN.fullmatch(words)
    if found:
        if syntax is not HASH:
            raise MarkerError(f"{where}: exercise gaps are for code, not Markdown")
        number, hint = int(found.group(1)), found.group(2).strip()
        return _Segment(body, _stub(number, hint, indent, ending), exercise=number)
    if words == "COMPLETE BEGIN":
        return _Segment(body, [])
    if syntax is HTML:
        return _Segment([], body)
    return _Segment([], [_uncomment(line, indent, where) for line in body])


def _stub(number: int, hint: str, indent: str, ending: str) -> list[str]:
    """The lines that stand for a solution: raise NotImplementedError("Exercise N: hint")."""
    message = f'"Exercise {number}: {hint}"'
    if len(f"{indent}raise NotImplementedError({message})") <= LINE_LENGTH:
        return [f"{indent}raise NotImplementedError({message}){ending}"]
    return [
        f"{indent}raise NotImplementedError({ending}",
        f"{indent}    {message}{ending}",
        f"{indent}){ending}",
    ]


def _uncomment(line: str, indent: str, where: str) -> str:
    """An exercise-only line as the exercise level has it: `{indent}# text` -> `{indent}text`."""
    ending = line[len(line.rstrip("\r\n")) :]
    text = line.rstrip("\r\n")
    if text == indent + "#":
        return ending
    if not text.startswith(indent + "# "):
        raise MarkerError(f"{where}: each line of the block starts with {indent + '# '!r}")
    return indent + text[len(indent) + 2 :] + ending


def _replace(segments: list[_Segment], old: str, new: str, where: str) -> list[_Segment]:
    """The segments with the one shared line holding `old` split out and changed."""
    hits = [
        (i, j)
        for i, segment in enumerate(segments)
        if segment.shared
        for j, line in enumerate(segment.complete)
        if old in line
    ]
    if len(hits) != 1 or segments[hits[0][0]].complete[hits[0][1]].count(old) != 1:
        raise MarkerError(f"{where}: {old!r} must be in exactly one line both levels share")
    i, j = hits[0]
    lines = segments[i].complete
    parts = [
        _Segment(lines[:j], lines[:j], shared=True),
        _Segment([lines[j]], [lines[j].replace(old, new)]),
        _Segment(lines[j + 1 :], lines[j + 1 :], shared=True),
    ]
    return segments[:i] + [p for p in parts if p.complete] + segments[i + 1 :]


# --- notebooks ------------------------------------------------------------------------------


def _split_notebook(name: str, text: str) -> Split:
    """Both levels of a notebook: each Markdown and code cell split on its own."""
    complete, exercises = json.loads(text), json.loads(text)
    changes: list[Change] = []
    for index, cell in enumerate(complete["cells"]):
        syntax = {"code": HASH, "markdown": HTML}.get(cell["cell_type"])
        if syntax is None:
            continue
        both = _split_text(f"{name} cell {index}", "".join(cell["source"]), syntax, index)
        if both.changes:  # a cell without markers keeps its source as it is
            cell["source"] = _lines(both.complete)
            exercises["cells"][index]["source"] = _lines(both.exercises)
            changes += both.changes
    if not changes:
        return Split(text, text, ())
    return Split(_dump(complete), _dump(exercises), tuple(changes))


def _lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: its lines, each with its newline."""
    return text.splitlines(keepends=True)


def _dump(notebook: dict) -> str:
    """A notebook as nbformat writes it (sorted keys, one space of indent)."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
