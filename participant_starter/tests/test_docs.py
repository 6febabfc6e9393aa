"""The README documents every setting, so the guide cannot fall behind the code."""

from modules.config import DEFAULTS, ROOT


def test_every_setting_is_in_the_readme_and_env_example() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in DEFAULTS:
        assert f"| `{name}` |" in readme, f"{name} is missing from the README's settings table"
    example = (ROOT / ".env.example").read_text()
    for name in ("PORT", "DATABASE_URL", "GAME_URL", "TEAM_TOKEN"):
        assert f"{name}=" in example
