"""What the demo prints: a standings line, the final standings and the points by phase."""


def standings_line(board: dict) -> str:
    """One compact line: every team's points, then the references."""
    teams = " · ".join(f"{t['name']} {t['points']}" for t in board["teams"])
    ref = board["reference"]
    return (
        f"{teams} | oracle {ref['oracle_points']:.0f} · baseline {ref['baseline_points']:.0f}"
        f" ({ref['requests']} requests)"
    )


def phase_table(phases: list[str], points: dict[str, dict[int, int]]) -> str:
    """Each team's points per phase, teams in order of their total."""
    widths = [max(8, len(p) + 2) for p in phases]
    lines = [f"{'team':<14}" + "".join(f"{p:>{w}}" for p, w in zip(phases, widths, strict=True))]
    for team, by_phase in sorted(points.items(), key=lambda kv: -sum(kv[1].values())):
        cells = "".join(f"{by_phase.get(i, 0):>{w}}" for i, w in enumerate(widths))
        lines.append(f"{team:<14}{cells}")
    return "\n".join(lines)


def standings_table(board: dict) -> str:
    """The standings as a table, with the oracle and the baseline for comparison."""
    ref = board["reference"]
    oracle, baseline = ref["oracle_points"], ref["baseline_points"]
    lines = [
        f"{'rank':>4}  {'team':<14}{'points':>7}{'correct':>9}{'wrong':>7}{'failed':>8}"
        f"{'vs oracle':>11}{'vs baseline':>13}"
    ]
    for t in board["teams"]:
        lines.append(
            f"{t['rank']:>4}  {t['name']:<14}{t['points']:>7}{t['correct']:>9}{t['wrong']:>7}"
            f"{t['failed']:>8}{t['points'] - oracle:>+11.1f}{t['points'] - baseline:>+13.1f}"
        )
    lines.append(
        f"      {'oracle':<14}{oracle:>7.1f}   the best possible answers (expected points)"
    )
    lines.append(f"      {'baseline':<14}{baseline:>7.1f}   always the majority class (expected)")
    lines.append(f"      {ref['requests']} requests scored, {ref['void']} void")
    return "\n".join(lines)
