"""The participant starter's two levels, `complete` and `exercises`, from one source.

The source is `participant_starter/` as committed; its files carry markers (markers.py).
`complete` is the source without them: every solution, and the leak explained. `exercises`
is the same starter with a stub raising NotImplementedError("Exercise N: <hint>") where
each solution was, and nothing that tells the leak. A team's home gets the level
`users create --starter` names (starter.py builds the tarball from `tree`).

`python -m game_server.accounts.levels exercises DIR` writes a level into DIR, to read it;
with `--archive`, DIR is a tar.gz of the starter as a home gets it, data included: the
participant kit (`make participant-kit`), without the solutions at the exercise level.
"""

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from game_server.accounts.config import STARTER_DIR_NAME, kit_path
from game_server.accounts.markers import MarkerError, Split, split, syntax_of

COMPLETE, EXERCISES = "complete", "exercises"
LEVELS = (COMPLETE, EXERCISES)
SOURCE = kit_path(STARTER_DIR_NAME)  # the checkout's, or the installed package's copy
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache", ".venv"}


class LevelError(ValueError):
    """The starter cannot be made at a level (a marker error, the exercises' numbers)."""


@dataclass(frozen=True)
class Gap:
    """One exercise: its number, its hint, and where its stub is in the exercise starter."""

    number: int
    hint: str
    file: str
    line: int  # counted from 1


def files(root: Path, keep: Callable[[str], bool] = lambda rel: True) -> Iterator[str]:
    """The starter's files (relative POSIX paths, sorted), caches left out, `keep`ing some."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if not name.endswith(".pyc") and keep(rel):
                yield rel


def render(name: str, text: str, level: str) -> str:
    """One file (its name says its comment syntax) at `level`."""
    if level not in LEVELS:
        raise LevelError(f"unknown starter level {level!r}: {' or '.join(LEVELS)}")
    try:
        both = split(name, text)
    except MarkerError as exc:
        raise LevelError(str(exc)) from exc
    return both.complete if level == COMPLETE else both.exercises


def has_markers(rel: str) -> bool:
    """Whether a file may carry markers (a text file in a syntax the generator knows)."""
    return rel.endswith(".ipynb") or syntax_of(rel) is not None


def split_tree(root: Path, keep: Callable[[str], bool] = lambda rel: True) -> dict[str, Split]:
    """Every text file of the starter at both levels, the exercises' numbers checked."""
    try:
        out = {
            rel: split(rel, (root / rel).read_text(encoding="utf-8"))
            for rel in files(root, keep)
            if has_markers(rel)
        }
    except MarkerError as exc:
        raise LevelError(str(exc)) from exc
    _check_numbers(gaps_of(out))
    return out


def tree(
    root: Path, level: str, keep: Callable[[str], bool] = lambda rel: True
) -> dict[str, bytes]:
    """Every file of the starter at `level`: {relative path: bytes}."""
    if level not in LEVELS:
        raise LevelError(f"unknown starter level {level!r}: {' or '.join(LEVELS)}")
    texts = split_tree(root, keep)
    out = {}
    for rel in files(root, keep):
        if rel in texts:
            both = texts[rel]
            out[rel] = (both.complete if level == COMPLETE else both.exercises).encode("utf-8")
        else:
            out[rel] = (root / rel).read_bytes()
    return out


def gaps_of(splits: dict[str, Split]) -> list[Gap]:
    """The exercises of a split starter, in order of their number."""
    found = []
    for rel, both in splits.items():
        lines = both.exercises.splitlines()
        for change in both.changes:
            if change.exercise is not None:
                stub = "".join(lines[change.start : change.stop])
                hint = stub.split(f'"Exercise {change.exercise}: ', 1)[1].split('"', 1)[0]
                found.append(Gap(change.exercise, hint, rel, change.start + 1))
    return sorted(found, key=lambda gap: gap.number)


def _check_numbers(found: list[Gap]) -> None:
    """The exercises are numbered 1, 2, ... N, each once."""
    numbers = [gap.number for gap in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise LevelError(
            f"the exercises must be numbered 1 to {len(numbers)}, once each: {numbers}"
        )


def write(root: Path, out: Path, level: str) -> list[str]:
    """Write the starter at `level` into the folder `out`; the files written."""
    written = tree(root, level)
    for rel, data in written.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod((root / rel).stat().st_mode & 0o777)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    """`python -m game_server.accounts.levels LEVEL DIR`: write a level of the starter."""
    parser = argparse.ArgumentParser(prog="python -m game_server.accounts.levels")
    parser.add_argument("level", choices=LEVELS)
    parser.add_argument("out", type=Path, help="a folder (created; files in it are replaced)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the starter's source")
    parser.add_argument(
        "--archive",
        action="store_true",
        help="write OUT as a tar.gz with the training data: what participants fetch beforehand",
    )
    args = parser.parse_args(argv)
    if args.archive:
        return _archive(args.source, args.out, args.level)
    try:
        written = write(args.source, args.out, args.level)
    except (LevelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.level} starter: {len(written)} files in {args.out}")
    for gap in gaps_of(split_tree(args.source)) if args.level == EXERCISES else []:
        print(f"  exercise {gap.number}: {gap.file}:{gap.line}  {gap.hint}")
    return 0


def _archive(source: Path, out: Path, level: str) -> int:
    """Write the starter a team's home gets at `level` (data included) as a tar.gz."""
    # Imported here: starter.py imports this module.
    from game_server.accounts.config import AccountsError, Settings
    from game_server.accounts.starter import starter_tarball

    try:
        data = starter_tarball(Settings(starter_dir=str(source), starter_level=level))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except (AccountsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{level} starter: {out} ({len(data) // 1024} KiB), to unpack with tar -xzf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
