"""A readable summary of a game's timeline, as `game-server game check` prints it."""

from game_server.scenario.gamefile import GameFile, Phase


def _clock(seconds: float) -> str:
    """Seconds as m:ss (or h:mm:ss)."""
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def _changes(phase: Phase) -> str:
    """A short description of the shift and drift in force in a phase."""
    parts = []
    s, d = phase.shift, phase.drift
    if s.age_delta:
        parts.append(f"age {s.age_delta:+g} y")
    if s.loan_factor != 1:
        parts.append(f"loans x{s.loan_factor:g}")
    if s.new_region and s.new_region_share:
        parts.append(f"new region {s.new_region} {s.new_region_share:.0%}")
    if d.region and d.region_logit:
        parts.append(f"{d.region} {d.region_logit:+g} logit")
    if d.employment and d.employment_logit:
        parts.append(f"{d.employment} {d.employment_logit:+g} logit")
    if d.burden_weight != 1:
        parts.append(f"burden x{d.burden_weight:g}")
    if d.history_weight != 1:
        parts.append(f"late payments x{d.history_weight:g}")
    return ", ".join(parts) or "-"


def describe(game: GameFile, teams: int = 20) -> str:
    """A readable summary of a game's timeline, as `game-server game check` prints it."""
    st = game.settings
    source = (
        f"own data: pool {st.pool}, training {st.training_data}, label {st.label_column!r}"
        if st.pool
        else f"generated (data seed {st.data_seed}, {st.data_rows} training rows)"
    )
    lines = [
        f"{st.name}  ({game.path})",
        f"seed {st.seed}, label delay {st.label_delay:g} s, timeout {st.timeout:g} s, "
        f"max body {st.max_body_bytes} bytes, allowed hosts {', '.join(st.allowed_hosts)}",
        f"data: {source}",
        "",
        f"{'#':>2}  {'phase':<20} {'kind':<7} {'start':>7} {'length':>7} {'rate/s':>7} "
        f"{'burst':>5} {'odd':>4} {'rounds':>8}  world (shift, drift)",
    ]
    start = 0.0
    for i, p in enumerate(game.phases, 1):
        lines.append(
            f"{i:>2}  {p.name[:20]:<20} {p.kind:<7} {_clock(start):>7} {_clock(p.duration):>7} "
            f"{p.rate:>7g} {p.burst:>5} {p.oddity_share:>4.0%} {p.expected_rounds:>8,.0f}  "
            f"{_changes(p)}"
        )
        start += p.duration
    rounds = sum(p.expected_rounds for p in game.phases)
    peak = max(p.rate for p in game.phases)
    lines += [
        "",
        f"total {_clock(game.duration)}, {rounds:,.0f} rounds (each round goes to every team)",
        f"with {teams} teams: {rounds * teams:,.0f} requests, "
        f"{rounds * teams / game.duration:,.0f}/s on average, "
        f"{peak * teams:,.0f}/s at the peak rate",
    ]
    return "\n".join(lines)
