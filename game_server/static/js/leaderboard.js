// The live leaderboard: polls /api/leaderboard every second and /api/history every 3 s,
// updates the table and the chart in place (rows are reused, the chart is redrawn with
// Plotly.react on bounded data), so the page's memory stays flat all day.
"use strict";
(function () {
  const MARK_MS = 8000; // how long a change marker stays visible
  const rows = new Map(); // team name -> {tr, cells, rank, points, markAt}
  const tbody = document.getElementById("board");
  const chart = document.getElementById("chart");
  let lastHistory = null;
  window.__boardUpdates = 0; // the browser test reads these: the page never reloads
  window.__boardLoadedAt = window.__boardLoadedAt || Date.now();

  const COLUMNS = ["rank", "change", "team", "points", "correct", "wrong", "failed",
    "accuracy", "p50", "p95", "up"];
  const NUMERIC = new Set(["rank", "points", "correct", "wrong", "failed", "accuracy", "p50", "p95"]);

  function makeRow(name) {
    const tr = document.createElement("tr");
    const cells = {};
    COLUMNS.forEach(function (c) {
      const td = Game.el("td", null, (NUMERIC.has(c) ? "num " : "") + c);
      cells[c] = td;
      tr.appendChild(td);
    });
    const link = Game.el("a", name);
    link.href = "/teams/" + encodeURIComponent(name);
    cells.team.appendChild(link);
    cells.team.title = name;
    cells.up.appendChild(Game.el("span", null, "dot unknown"));
    cells.up.appendChild(Game.el("span", "", "up-state"));
    cells.up.appendChild(Game.el("span", "", "up-reason muted"));
    return { tr: tr, cells: cells, rank: null, points: null, markAt: 0 };
  }

  function updateRow(row, t, now) {
    const c = row.cells;
    Game.setText(c.rank, t.rank);
    if (row.rank !== null && (t.rank !== row.rank || t.points !== row.points)) {
      c.change.replaceChildren();
      const moved = row.rank - t.rank;
      if (moved) c.change.appendChild(Game.el("span", (moved > 0 ? "▲" : "▼") + Math.abs(moved),
        moved > 0 ? "up-mark" : "down-mark"));
      const gained = t.points - row.points;
      if (gained) c.change.appendChild(Game.el("span", " " + (gained > 0 ? "+" : "") + gained,
        gained > 0 ? "gain" : "loss"));
      row.markAt = now;
    } else if (row.markAt && now - row.markAt > MARK_MS) {
      c.change.replaceChildren();
      row.markAt = 0;
    }
    row.rank = t.rank;
    row.points = t.points;
    Game.setText(c.points, Game.num(t.points));
    Game.setText(c.correct, Game.num(t.correct));
    Game.setText(c.wrong, Game.num(t.wrong));
    Game.setText(c.failed, Game.num(t.failed));
    Game.setText(c.accuracy, Game.pct(t.accuracy));
    Game.setText(c.p50, Game.ms(t.latency_p50));
    Game.setText(c.p95, Game.ms(t.latency_p95));
    // In the lobby and while paused, `up` comes from the probe of the team's health route,
    // with why it is down; while running, from its answers.
    const state = t.up === true ? "up" : t.up === false ? "down" : "unknown";
    c.up.firstChild.className = "dot " + state;
    Game.setText(c.up.children[1], t.active ? (state === "unknown" ? "–" : state) : "disabled");
    Game.setText(c.up.children[2], t.active && state === "down" && t.up_reason ? " " + t.up_reason : "");
    row.tr.className = t.active ? "" : "inactive";
  }

  function showBoard(data) {
    const now = Date.now();
    const seen = new Set();
    data.teams.forEach(function (t, i) {
      let row = rows.get(t.name);
      if (!row) { row = makeRow(t.name); rows.set(t.name, row); }
      updateRow(row, t, now);
      seen.add(t.name);
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    rows.forEach(function (row, name) {
      if (!seen.has(name)) { row.tr.remove(); rows.delete(name); }
    });
    document.getElementById("empty").hidden = data.teams.length > 0;
    const r = data.reference;
    Game.setText("reference", r.revealed
      ? "Over the " + Game.num(r.revealed) + " requests whose label is visible, a perfect model would expect " +
        Game.num(r.oracle_points, 0) + " points (the oracle) and always answering the majority class " +
        Game.num(r.baseline_points, 0) + " (the baseline)." + (r.void ? " " + r.void + " void requests counted for nobody." : "") +
        skippedText(r.skipped)
      : "");
  }

  function skippedText(skipped) {
    const parts = Object.keys(skipped || {}).filter(function (k) { return skipped[k]; })
      .map(function (k) { return Game.num(skipped[k]) + " (" + k + ")"; });
    return parts.length ? " Rounds skipped for every team alike: " + parts.join(", ") + "." : "";
  }

  function showGame(game, frozen) {
    const state = document.getElementById("state");
    Game.setText(state, game.state);
    state.className = "badge state state-" + game.state;
    const p = game.phase;
    Game.setText("phase-name", p ? p.name : "");
    Game.setText("phase-of", p ? "phase " + (p.index + 1) + " of " + game.phase_count : "");
    Game.setText("phase-desc", p ? p.description : "");
    Game.setText("phase-left", p ? Game.clock(p.time_left) : "–");
    Game.setText("game-left", Game.clock(game.time_left));
    document.getElementById("frozen").hidden = !frozen;
  }

  function showTrouble(data) {
    const down = data.database_down_since, r = data.reference || {};
    Game.setText("db-down", down ? "⚠ Database unreachable since " +
      new Date(down * 1000).toLocaleTimeString() + ": the board shows its last data; the game " +
      "sends no rounds meanwhile and goes on by itself when the database is back." : "");
    document.getElementById("db-down").hidden = !down;
    Game.setText("overloaded", r.overloaded ? "⚠ The game is overloaded: it skips whole rounds " +
      "for every team alike (" + Game.num((r.skipped || {}).overload || 0) + " so far). " +
      "Instructor: start another shard (docs/INSTRUCTOR.md, Shards)." : "");
    document.getElementById("overloaded").hidden = !r.overloaded;
  }

  function render(data) {
    showTrouble(data);
    showGame(data.game, data.frozen);
    showBoard(data);
    window.__boardUpdates += 1;
  }
  Game.poll("leaderboard", function () { return "/api/leaderboard"; }, 1000, function (data) {
    if (data) render(data);
  });

  function drawChart(h) {
    lastHistory = h;
    const t0 = h.started_at || 0;
    const x = function (points) { return points.map(function (p) { return (p[0] - t0) / 60; }); };
    const y = function (points) { return points.map(function (p) { return p[1]; }); };
    const traces = Object.keys(h.teams).sort().map(function (name) {
      const s = h.teams[name];
      return { x: x(s), y: y(s), name: Game.plotlyText(name), mode: "lines", line: { width: 3 },
        hovertemplate: "%{y} points<extra>%{fullData.name}</extra>" };
    });
    traces.push({ x: x(h.oracle), y: y(h.oracle), name: "oracle (best possible)", mode: "lines",
      line: { dash: "dash", width: 2, color: "#9aa5b8" } });
    traces.push({ x: x(h.baseline), y: y(h.baseline), name: "baseline (majority class)",
      mode: "lines", line: { dash: "dot", width: 2, color: "#9aa5b8" } });
    const layout = Game.chartLayout({
      title: { text: "Points over time" + (h.frozen_at ? " (frozen)" : ""), x: 0.01 },
      xaxis: Object.assign(Game.chartLayout().xaxis, { title: { text: "minutes into the game" } }),
      uirevision: "board", showlegend: true,
    });
    Plotly.react(chart, traces, layout, Game.chartConfig);
  }

  Game.poll("history", function () { return "/api/history"; }, 3000, function (h) {
    if (h) drawChart(h);
  });
  Game.onThemeChange(function () { if (lastHistory) drawChart(lastHistory); });
  // The page's update functions, for the memory test and benchmark (hundreds of updates
  // in seconds instead of minutes of polling).
  window.gameBoard = { render: render, drawChart: drawChart };
})();
