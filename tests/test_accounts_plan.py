"""The plan's contracts without a server: every step is carried out, URLs round-trip."""

import json

import pytest
from click.testing import CliRunner

from game_server.accounts import apply, registry
from game_server.accounts import cli as users_cli
from game_server.accounts.config import Settings
from game_server.accounts.plan import Secrets, Step, TeamPlan, describe
from game_server.accounts.registry import Record
from game_server.accounts.roster import Team
from game_server.accounts.starter import database_url, url_password


def test_every_step_has_a_function_that_carries_it_out():
    assert set(apply.STEPS) == set(Step)


def test_describe_names_the_steps_and_the_assigned_ports():
    team = Team("Red", "team-red", "", None, 2)
    ports = {"api_port": 9000, "jupyter_port": 9500, "debug_port": 9001}
    plan = TeamPlan(team, Record("Red", "team-red", **ports), Secrets())
    assert describe(plan) == "team-red (Red): unchanged"
    plan.steps += [Step.ASSIGN_PORTS, Step.CREATE_USER]
    plan.notes.append("disabled in the game")
    assert describe(plan) == (
        "team-red (Red): assign ports 9000/9500/9001, create user (note: disabled in the game)"
    )


# A record as an older version wrote it: no debug port, and a key this version does not know.
OLD_RECORD = {
    **{"name": "Red", "user": "team-red", "api_port": 9000, "jupyter_port": 9500},
    **{"role": "team-red", "schema": "team-red", "created": "2026-01-01T09:00:00"},
    "note": "kept",
}


def test_a_registry_record_keeps_its_json_form():
    record = Record.from_dict(OLD_RECORD)
    assert record.ports() == (9000, 9500, 0) and record.extra == {"note": "kept"}
    assert record.to_dict() == OLD_RECORD  # missing keys stay missing, unknown ones are kept
    journal = {"started": "now", "steps": ["create user", "set password"], "done": 1}
    started = registry.journaled(record, "now", journal["steps"], 1)
    assert started.to_dict() == {**OLD_RECORD, "journal": journal} and record.journal is None
    assert registry.interrupted_at(started) == "set password"
    assert registry.completed(started) == record
    with pytest.raises(TypeError, match="user"):
        Record.from_dict({"name": "Red"})


def test_users_list_reads_an_older_registry(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"version": 1, "teams": [OLD_RECORD]}))
    result = CliRunner().invoke(users_cli.list_, ["--registry", str(path)], obj={})
    assert result.exit_code == 0, result.output
    assert "team-red" in result.output and "api=9000 jupyter=9500 debug=-" in result.output
    path.write_text(json.dumps({"version": 1, "teams": [{"name": "Red"}]}))
    result = CliRunner().invoke(users_cli.list_, ["--registry", str(path)], obj={})
    assert result.exit_code == 1 and "not a provisioning registry" in result.output


def test_database_url_round_trips_its_password():
    settings = Settings(db_host="::1", workshop_db="ws")
    url = database_url(settings, "team-red", "a@b:c/d")
    assert url == "postgresql+psycopg://team-red:a%40b%3Ac%2Fd@[::1]:5432/ws"
    assert url_password(url) == "a@b:c/d"
    assert database_url(Settings(), "team-red", None).endswith(":PASSWORD@127.0.0.1:5432/workshop")
    assert url_password("not a url") is None


def test_users_create_takes_the_level(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(
        users_cli.provision, "create", lambda ex, settings, *a, **k: seen.update(s=settings)
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("name,members,ssh_key\nRed,,\n")
    for args, level in (([], "complete"), (["--starter", "exercises"], "exercises")):
        result = CliRunner().invoke(
            users_cli.create, [str(roster), "--no-check", "--no-game", *args], obj={}
        )
        assert result.exit_code == 0, result.output
        assert seen["s"].starter_level == level
    result = CliRunner().invoke(users_cli.create, [str(roster), "--starter", "easy"], obj={})
    assert result.exit_code == 2 and "'easy' is not one of 'complete', 'exercises'" in result.output


def test_handout_defaults_to_a_private_state_folder(tmp_path, monkeypatch):
    """The handout (every team's password) goes to GAME_STATE_DIR/handout, folders 0700,
    never to the folder the command runs in."""
    from game_server.accounts import handout
    from game_server.accounts.config import Settings

    monkeypatch.setenv("GAME_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.handout_dir == str(tmp_path / "state" / "handout")
    json_path, _ = handout.save(settings.handout_dir, {"Red": {"name": "Red"}})
    assert json_path.stat().st_mode & 0o777 == 0o600
    for folder in (tmp_path / "state", tmp_path / "state" / "handout"):
        assert folder.stat().st_mode & 0o777 == 0o700
    assert not (tmp_path / "handout").exists()


def test_empty_lists_say_no_teams_yet(tmp_path):
    """`users list` with nobody provisioned says so, with the command that adds teams."""
    result = CliRunner().invoke(
        users_cli.list_, ["--registry", str(tmp_path / "accounts.json")], obj={}
    )
    assert result.exit_code == 0, result.output
    assert "no teams yet" in result.output and "users create" in result.output


def test_progress_counts_the_teams_and_estimates_the_time_left():
    """Each team's line: its place of the total, and after the first, the time left."""
    from game_server.accounts.progress import Progress

    now, lines = [100.0], []
    progress = Progress(30, lines.append, clock=lambda: now[0])
    progress.next("team-a (A): provisioning")
    now[0] += 4.0  # one team took 4 s: 29 more take about 2 min
    progress.next("team-b (B): provisioning")
    now[0] += 2.0  # two took 6 s: 28 more take about 84 s
    progress.next("team-c (C): provisioning")
    assert lines == [
        "[1/30] team-a (A): provisioning",
        "[2/30] team-b (B): provisioning, about 2 min left",
        "[3/30] team-c (C): provisioning, about 84 s left",
    ]


def test_a_step_done_for_some_teams_says_the_time_left_for_the_others():
    """`rehearse`'s "2 of 4 done, about 10 s left": from the mean so far; nothing at the end."""
    from game_server.accounts.progress import still_to_go

    assert still_to_go(10.0, 2, 4) == ", about 10 s left"
    assert still_to_go(10.0, 0, 4) == "" and still_to_go(10.0, 4, 4) == ""
