"""tests/readme_blocks.py: fenced blocks sorted into server, laptop and long-running ones."""

import pytest
from readme_blocks import (
    Block,
    laptop_blocks,
    long_running,
    parse,
    programs,
    server_blocks,
    strip_comment,
    words,
)

GUIDE = """# A guide

```
folder/
└── tree.txt
```

```bash laptop
ssh team@server
```

Then, on the server:

```bash
cd ~/work          # the folder
curl -s localhost:$PORT/predict -H 'Content-Type: application/json' \\
  -d '{"id": "#1"}'

```

```bash long-running
jupyter lab --port $JUPYTER_PORT   # Ctrl-C stops it
```

1. In a list:

   ```bash
   pytest -q
   ```

````bash
echo "a fence of four holds ``` inside"
````

```json
{"pred": 1}
```
"""


def test_blocks_come_in_order_with_language_tags_and_opening_line():
    blocks = parse(GUIDE)
    assert [(b.language, sorted(b.tags)) for b in blocks] == [
        ("", []),
        ("bash", ["laptop"]),
        ("bash", []),
        ("bash", ["long-running"]),
        ("bash", []),
        ("bash", []),
        ("json", []),
    ]
    assert blocks[1] == Block(8, "bash", frozenset({"laptop"}), "ssh team@server\n")


def test_server_blocks_leave_out_laptop_and_non_command_blocks():
    found = server_blocks(GUIDE)
    assert [b.commands for b in found] == [
        [
            "cd ~/work          # the folder",
            "curl -s localhost:$PORT/predict -H 'Content-Type: application/json'   "
            """-d '{"id": "#1"}'""",
        ],
        ["jupyter lab --port $JUPYTER_PORT   # Ctrl-C stops it"],
        ["pytest -q"],  # the list's indentation is taken off
        ['echo "a fence of four holds ``` inside"'],
    ]


def test_laptop_blocks_and_long_running_commands():
    assert [b.commands for b in laptop_blocks(GUIDE)] == [["ssh team@server"]]
    assert long_running(GUIDE) == ["jupyter lab --port $JUPYTER_PORT   # Ctrl-C stops it"]


def test_a_fence_left_open_is_an_error_with_its_line():
    with pytest.raises(ValueError, match="line 3: a code fence that is never closed"):
        parse("text\n\n```bash\nls\n")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ls  # list", "ls"),
        ("# only a comment", ""),
        ("curl http://x/#top", "curl http://x/#top"),  # not a comment inside a word
        ("echo '# quoted' \"# too\" # real", "echo '# quoted' \"# too\""),
    ],
)
def test_comments_are_cut_as_bash_cuts_them(line, expected):
    assert strip_comment(line) == expected


def test_words_and_the_programs_a_command_calls():
    command = "FOO=1 python3 -m venv .venv && . .venv/bin/activate | tee log; (cd /; ls)  # x"
    assert words("echo 'a b' \"c\"  # d") == ["echo", "a b", "c"]
    assert programs(command) == ["python3", ".", "tee", "cd", "ls"]
