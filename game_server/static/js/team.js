// A team's page: standing, accuracy and latency over time, failures by reason, recent
// requests. With the team's token (kept in sessionStorage, sent as a Bearer header, never
// in a URL) it also shows the team's predictions and what its API sent back.
"use strict";
(function () {
  const team = document.getElementById("main").dataset.team;
  const key = "team-token:" + team;
  const base = "/api/teams/" + encodeURIComponent(team);
  let lastSummary = null;

  function token() { try { return sessionStorage.getItem(key); } catch (e) { return null; } }
  function auth() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
  function showTokenState(text) {
    Game.setText("token-state", text);
    document.getElementById("token-clear").hidden = !token();
  }

  function card(label, value) {
    const c = Game.el("div", null, "card");
    c.appendChild(Game.el("span", label, "label"));
    c.appendChild(Game.el("span", value, "value"));
    return c;
  }

  function showSummary(s) {
    lastSummary = s;
    const t = s.standing || {};
    const cards = [
      card("rank", t.rank ?? "–"), card("points", Game.num(t.points)),
      card("correct", Game.num(t.correct)), card("wrong", Game.num(t.wrong)),
      card("failed", Game.num(t.failed)), card("accuracy", Game.pct(t.accuracy)),
      card("p50 ms", Game.ms(t.latency_p50)), card("p95 ms", Game.ms(t.latency_p95)),
      card("API", !s.active ? "disabled" : t.up === true ? "up"
        : t.up === false ? "down" + (t.up_reason ? ": " + t.up_reason : "") : "–"),
    ];
    document.getElementById("cards").replaceChildren(...cards);
    Game.setText("labels", (s.label_delay !== null && s.label_delay !== undefined
      ? "Labels arrive " + Game.num(s.label_delay) + " s after a request is sent (GET /api/feedback with your token). "
      : "") + (s.labels_revealed_until
      ? "Labels are visible for requests sent up to " + Game.timeOfDay(s.labels_revealed_until) + "."
      : "No label is visible yet.") + (s.frozen ? " The leaderboard is frozen: totals are as of the freeze." : ""));
    drawCharts(s);
  }

  function drawCharts(s) {
    const x = s.series.map(function (p) { return new Date(p.at * 1000); });
    const traces = [
      { x: x, y: s.series.map(function (p) { return p.accuracy; }), name: "accuracy (revealed labels)",
        mode: "lines+markers", yaxis: "y", line: { width: 3 } },
      { x: x, y: s.series.map(function (p) { return p.latency_p50; }), name: "latency p50 ms",
        mode: "lines", yaxis: "y2" },
      { x: x, y: s.series.map(function (p) { return p.latency_p95; }), name: "latency p95 ms",
        mode: "lines", yaxis: "y2", line: { dash: "dot" } },
    ];
    const layout = Game.chartLayout({ title: { text: "Accuracy and latency over time", x: 0.01 } });
    layout.yaxis = Object.assign(layout.yaxis, { title: { text: "accuracy" }, range: [0, 1], tickformat: ".0%" });
    layout.yaxis2 = Object.assign({}, layout.xaxis, { title: { text: "ms" }, overlaying: "y", side: "right", rangemode: "tozero" });
    layout.margin.r = 55;
    Plotly.react("over-time", traces, layout, Game.chartConfig);
    const reasons = Object.keys(s.failures).sort(function (a, b) { return s.failures[b] - s.failures[a]; });
    Plotly.react("failures", [{
      type: "bar", orientation: "h", x: reasons.map(function (r) { return s.failures[r]; }), y: reasons,
      text: reasons.map(function (r) { return s.reasons[r]; }), hoverinfo: "x+text",
      textposition: "none", marker: { color: "#ff6b6b" },
    }], Object.assign(Game.chartLayout({ title: { text: "Failures by reason", x: 0.01 } }), {
      margin: { l: 130, r: 15, t: 35, b: 40 }, showlegend: false,
      annotations: reasons.length ? [] : [{ text: "no failures", showarrow: false, font: { size: 18 } }],
    }), Game.chartConfig);
  }

  function showResults(data, response, error) {
    if (!data) {
      if (response && response.status === 401) {
        try { sessionStorage.removeItem(key); } catch (e) { /* private mode */ }
        showTokenState((error && error.error) || "that is not this team's token");
        results.now();
      }
      return;
    }
    showTokenState(data.private ? "private view: your predictions and API answers are shown" : "");
    const trs = data.results.map(function (r) {
      const tr = document.createElement("tr");
      const outcome = Game.el("td", r.outcome, "outcome-" + r.outcome);
      if (!r.revealed && r.outcome === "answered") outcome.title = "the label is not revealed yet";
      [
        Game.el("td", Game.timeOfDay(r.sent_at)), Game.el("td", r.request_id),
        Game.el("td", r.phase_index + 1), Game.el("td", (r.oddities || []).join(", ")), outcome,
        Game.el("td", r.points ?? "", "num"), Game.el("td", r.pred ?? "", "num"),
        Game.el("td", Game.ms(r.latency_ms), "num"), Game.el("td", r.status_code ?? "", "num"),
        Game.el("td", r.reason || ""), Game.el("td", r.body_excerpt || "", "excerpt"),
      ].forEach(function (td) { tr.appendChild(td); });
      return tr;
    });
    document.getElementById("requests").replaceChildren(...trs);
  }

  Game.poll("team", function () { return base; }, 2000, function (s) { if (s) showSummary(s); });
  const results = Game.poll("results", function () { return base + "/results?limit=50"; }, 2000,
    showResults, auth);

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const input = document.getElementById("token");
    const value = input.value.trim();
    input.value = "";
    if (!value) return;
    try { sessionStorage.setItem(key, value); } catch (e) { /* private mode */ }
    showTokenState("checking…");
    results.now();
  });
  document.getElementById("token-clear").addEventListener("click", function () {
    try { sessionStorage.removeItem(key); } catch (e) { /* private mode */ }
    showTokenState("");
    results.now();
  });
  showTokenState("");
  Game.onThemeChange(function () { if (lastSummary) drawCharts(lastSummary); });
})();
