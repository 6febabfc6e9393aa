"""The instructor's kit beside the guide: the one-page cheat sheet and the ready model."""

import importlib.util
import re
from pathlib import Path

import pytest
from starter_helpers import copy_starter, serve

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
CHROMIUM = Path("/usr/bin/chromium")


def load_script(name: str):
    """Import one of the scripts/ files as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cheatsheet = load_script("cheatsheet")


def guide_commands() -> list[str]:
    """Every `game-server ...` command line of the guide's commands of the day."""
    text = GUIDE.read_text(encoding="utf-8")
    block = text.split("<!-- cheatsheet: The commands of the day -->", 1)[1].split("-->", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("game-")]


def test_the_guide_marks_the_parts_of_the_sheet():
    """The plan, the commands, the controls and the failure playbook are marked, in pairs."""
    titles = [title for title, _ in cheatsheet.extract(GUIDE.read_text(encoding="utf-8"))]
    for wanted in (
        "The plan",
        "The commands of the day",
        "controls",
        "When things go wrong",
        "A team's API died",
        "A team stuck at training",
        "When the server or the network fails",
    ):
        assert any(wanted in title for title in titles), wanted


def test_markers_that_do_not_pair_are_refused():
    """A part without its end, an end without a start, or nothing marked: a clear error."""
    with pytest.raises(cheatsheet.CheatsheetError, match="has no"):
        cheatsheet.extract("<!-- cheatsheet: A -->\ntext\n")
    with pytest.raises(cheatsheet.CheatsheetError, match="without a start"):
        cheatsheet.extract("text\n<!-- /cheatsheet -->\n")
    with pytest.raises(cheatsheet.CheatsheetError, match="inside another"):
        cheatsheet.extract("<!-- cheatsheet: A -->\n<!-- cheatsheet: B -->\n")
    with pytest.raises(cheatsheet.CheatsheetError, match="no part"):
        cheatsheet.extract("# a guide without markers\n")


def test_the_sheet_holds_the_commands_of_the_day(tmp_path):
    """make cheatsheet's HTML has every command of the day, the fallback and the helpers."""
    assert cheatsheet.main(["--out", str(tmp_path), "--no-pdf"]) == 0
    page = (tmp_path / "cheatsheet.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page).replace("&quot;", '"').replace("&amp;", "&")
    commands = guide_commands()
    assert len(commands) >= 8
    for command in commands:
        assert command in text, command
    for needle in (
        "game-server control start",
        "game-server control freeze",
        "teams add",
        "game-server allow 192.168.1.0/24",
        "tmux",
        "output/api.log",
        "scripts/ready_model.py",
        "/admin",
        "0:10",
        "setup_server.sh --check",  # the day from set-up ...
        "users create",
        "doctor",
        "game-server new",
        "users delete --all",  # ... to delete
    ):
        assert needle in text, needle
    assert "<!--" not in page, "markers stay out of the sheet"


@pytest.mark.browser
@pytest.mark.slow
def test_the_sheet_prints_on_one_page(tmp_path):
    """Chromium prints the sheet on one A4 page (longer marked parts would spill over)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    assert cheatsheet.main(["--out", str(tmp_path)]) == 0
    data = (tmp_path / "cheatsheet.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    assert cheatsheet.pdf_pages(data) == 1


@pytest.mark.slow
def test_the_ready_model_serves_in_a_teams_starter(tmp_path):
    """The ready model, copied into a fresh starter's models/, answers the customer's requests."""
    import requests

    ready_model = load_script("ready_model")
    starter = copy_starter(tmp_path / "participant_starter")
    model = tmp_path / "ready" / "model.pkl"
    assert ready_model.main(["--out", str(model)]) == 0
    (starter / "models" / "model.pkl").write_bytes(model.read_bytes())
    with serve(starter) as url:
        reply = requests.post(
            f"{url}/predict",
            json={"id": "r-1", "features": {"age": "thirty", "income": 42000, "region": "mars"}},
            timeout=5,
        )
    assert reply.status_code == 200
    body = reply.json()
    assert body["pred"] in (0, 1)
    assert body["model_version"] == "ready-model"
    metadata = (model.with_suffix(".json")).read_text()
    assert "collection_calls" not in metadata, "the ready model does not use the leak"
