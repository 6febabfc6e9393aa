"""Docker's `.dockerignore` rules, to check what a build context holds without Docker.

The same semantics as Docker's own matcher (moby/patternmatcher, which `docker build` and
BuildKit use; docs: "Dockerfile reference, .dockerignore file"):

- one pattern a line; blank lines and lines starting with `#` are skipped; surrounding
  spaces are trimmed; a leading `!` makes it an exception (it re-includes);
- each pattern is cleaned like Go's `filepath.Clean` (so `dir/` is `dir`, a leading `/` goes);
- Go's `filepath.Match` syntax (`*` and `?` never cross `/`, `[...]` classes, `\\` escapes),
  plus `**`, which matches any number of directories (zero included);
- a pattern that matches a parent directory of a path matches the path too;
- the last pattern that matches decides: excluded, or re-included by an exception.
"""

import posixpath
import re


def _clean(pattern: str) -> str:
    """`filepath.Clean` for a context-relative pattern (no leading `/`)."""
    cleaned = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
    return cleaned


def _regex(pattern: str) -> re.Pattern:
    """The pattern as an anchored regular expression (moby/patternmatcher's translation)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/`: zero or more whole directories
                out.append("(.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def parse(text: str) -> list[tuple[re.Pattern, bool]]:
    """The patterns of a `.dockerignore` file: (regex, is an exception), in order."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = _clean(line[1:].strip() if exception else line)
        rules.append((_regex(pattern), exception))
    return rules


def excluded(path: str, rules: list[tuple[re.Pattern, bool]]) -> bool:
    """Whether `path` (relative to the context, `/`-separated) is left out of the context."""
    parts = path.strip("/").split("/")
    parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
    result = False
    for regex, exception in rules:
        if regex.match(path) or any(regex.match(p) for p in parents):
            result = not exception
    return result
