"""What a team reads in its home: the data dictionary, the same page as the kit's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = ROOT / "data" / "README.md"
TEAM_DICTIONARY = ROOT / "participant_starter" / "data" / "README.md"
LEAK = "collection_calls"


def test_every_team_gets_the_data_dictionary_itself():
    """The starter's copy is the kit's page, byte for byte (the slides tell teams to read it)."""
    assert TEAM_DICTIONARY.read_bytes() == DICTIONARY.read_bytes(), (
        "edit data/README.md, then: cp data/README.md participant_starter/data/README.md"
    )


def test_the_dictionary_names_the_leak_only_in_its_table_row_and_footnote():
    """GAME.md §4: the leak column is listed like any other; only a footnote says why."""
    body, footnote = DICTIONARY.read_text(encoding="utf-8").split("\n---\n", 1)
    mentions = [line for line in body.splitlines() if LEAK in line]
    assert len(mentions) == 1 and mentions[0].startswith(f"| `{LEAK}` |"), mentions
    assert mentions[0].rstrip(" |").endswith("¹")
    assert re.match(rf"\s*¹ `{LEAK}`", footnote) and "after" in footnote
