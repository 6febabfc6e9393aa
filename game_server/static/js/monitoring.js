// The monitoring page: every feature's distribution in recent requests against the
// training data, with its drift statistic; the timeline's changes once the game is over.
"use strict";
(function () {
  const cards = new Map(); // feature -> {box, title, badge, stat, chart}
  const phaseSelect = document.getElementById("phase");
  const lastSelect = document.getElementById("last");
  let lastData = null;
  // ?phase=2&last=200 in the page's address preselects (handy for a screenshot).
  const params = new URLSearchParams(location.search);
  let wantedPhase = params.get("phase");
  if (params.get("last")) lastSelect.value = params.get("last");

  function url() {
    const phase = wantedPhase !== null ? wantedPhase : phaseSelect.value;
    return "/api/monitoring?phase=" + encodeURIComponent(phase) +
      "&last=" + encodeURIComponent(lastSelect.value);
  }

  function card(name) {
    let c = cards.get(name);
    if (c) return c;
    const box = Game.el("div", null, "feature");
    const title = Game.el("h3");
    title.appendChild(Game.el("span", name));
    const badge = Game.el("span", "", "badge");
    title.appendChild(badge);
    const stat = Game.el("p", "", "stat");
    const extra = Game.el("p", "", "stat");
    const chart = Game.el("div", null, "chart");
    box.append(title, stat, extra, chart);
    document.getElementById("features").appendChild(box);
    c = { box: box, badge: badge, stat: stat, extra: extra, chart: chart };
    cards.set(name, c);
    return c;
  }

  function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toPrecision(3); }

  function showFeature(f) {
    const c = card(f.feature);
    c.box.className = "feature" + (f.drifted ? " drifted" : "");
    Game.setText(c.badge, f.drifted === null ? "no data" : f.drifted ? "drift" : "no drift");
    c.badge.className = "badge " + (f.drifted ? "drift" : f.drifted === false ? "ok" : "");
    // A distance flags drift only with a significant test too (p < alpha, corrected for
    // the number of features) and enough values: see web/drift.py.
    const test = f.method ? f.method + " " + fmt(f.statistic) +
      (f.method.indexOf("p-value") >= 0 ? " (drift if < " + fmt(f.threshold)
        : " (drift if ≥ " + f.threshold + " and p < " + fmt(f.alpha)) + ")" : "";
    Game.setText(c.stat, test + " · PSI " + fmt(f.psi));
    Game.setText(c.extra, "missing " + f.missing_current + " of " + f.n_current +
      " (training " + Math.round(f.missing_reference * 100) + "%)" +
      (f.invalid_current ? " · unreadable " + f.invalid_current : ""));
    Plotly.react(c.chart, [
      { type: "bar", x: f.bins, y: f.reference, name: "training data", marker: { color: "#7f8ea8" } },
      { type: "bar", x: f.bins, y: f.current, name: "recent requests",
        marker: { color: f.drifted ? "#ff6b6b" : "#5ab0ff" } },
    ], Object.assign(Game.chartLayout(), {
      barmode: "group", bargap: 0.1, margin: { l: 40, r: 5, t: 5, b: 50 },
      yaxis: Object.assign(Game.chartLayout().yaxis, { tickformat: ".0%" }),
      xaxis: Object.assign(Game.chartLayout().xaxis, { tickfont: { size: 10 }, automargin: true }),
      legend: { orientation: "h", y: 1.12, x: 0, font: { size: 11 } },
      font: Object.assign(Game.chartLayout().font, { size: 12 }),
    }), Game.chartConfig);
  }

  function describe(obj) {
    const keys = Object.keys(obj || {});
    return keys.length ? keys.map(function (k) { return k + " = " + obj[k]; }).join(", ") : "–";
  }

  function show(data) {
    lastData = data;
    const known = new Set(Array.from(phaseSelect.options).map(function (o) { return o.value; }));
    data.phases.forEach(function (p) {
      if (!known.has(String(p.index))) {
        phaseSelect.appendChild(Game.el("option", (p.index + 1) + ". " + p.name));
        phaseSelect.lastChild.value = String(p.index);
      }
    });
    if (wantedPhase !== null) { phaseSelect.value = wantedPhase; wantedPhase = null; }
    Game.setText("summary", data.n_current
      ? data.drifted + " of " + data.features.length + " features drift, in the last " +
        Game.num(data.n_current) + " requests against the " + data.reference.source +
        " (" + Game.num(data.reference.rows) + " rows)."
      : "No requests yet in this selection.");
    data.features.forEach(showFeature);
    const names = new Set(data.features.map(function (f) { return f.feature; }));
    cards.forEach(function (c, name) {
      if (!names.has(name)) { Plotly.purge(c.chart); c.box.remove(); cards.delete(name); }
    });
    const box = document.getElementById("timeline-box");
    box.hidden = !data.timeline;
    if (data.timeline) {
      document.getElementById("timeline").replaceChildren(...data.timeline.map(function (p) {
        const tr = document.createElement("tr");
        tr.append(Game.el("td", p.name), Game.el("td", p.kind),
          Game.el("td", p.oddity_share ? Math.round(p.oddity_share * 100) + "% (" + p.oddities.join(", ") + ")" : "–"),
          Game.el("td", describe(p.shift)), Game.el("td", describe(p.drift)));
        return tr;
      }));
    }
  }

  const poller = Game.poll("monitoring", url, 5000, function (data) { if (data) show(data); });
  phaseSelect.addEventListener("change", function () { poller.now(); });
  lastSelect.addEventListener("change", function () { poller.now(); });
  Game.onThemeChange(function () { if (lastData) show(lastData); });
})();
