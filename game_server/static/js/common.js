// Shared by the pages: DOM helpers (text only, never HTML), conditional polling with a
// "reconnecting…" badge, formatting, the dark/light toggle and Plotly's colours.
"use strict";

const Game = (function () {
  const REQUEST_TIMEOUT_MS = 5000;
  const failing = new Set(); // pollers whose last request failed

  /** A new element with text set through textContent (team strings stay text). */
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  /** Set an element's text (by id or node) only when it changed. */
  function setText(target, text) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    const value = text === undefined || text === null ? "" : String(text);
    if (node && node.textContent !== value) node.textContent = value;
  }

  function showConnection() {
    const badge = document.getElementById("conn");
    if (badge) badge.hidden = failing.size === 0;
  }

  /**
   * Poll `url()` every `intervalMs` with If-None-Match; call `onData(json)` only when the
   * answer changed. Failures show the badge and the poll simply goes on (so the page
   * reconnects by itself after a server restart). One request at a time, never a pile-up.
   */
  function poll(name, url, intervalMs, onData, headers) {
    let etag = null;
    let lastUrl = null;
    let timer = null;
    let running = false;
    let again = false;
    async function tick() {
      running = true;
      const target = url();
      if (target !== lastUrl) { etag = null; lastUrl = target; }
      const controller = new AbortController();
      const abort = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
      try {
        const h = Object.assign({ Accept: "application/json" }, headers ? headers() : {});
        if (etag) h["If-None-Match"] = etag;
        const response = await fetch(target, { headers: h, cache: "no-store", signal: controller.signal });
        if (response.status === 304) {
          failing.delete(name);
        } else if (response.ok) {
          const data = await response.json();
          etag = response.headers.get("ETag");
          failing.delete(name);
          onData(data, response);
        } else {
          // A refused request (401, 404) is an answer, not a lost connection.
          failing.delete(name);
          etag = null;
          let body = {};
          try { body = await response.json(); } catch (e) { /* not JSON */ }
          onData(null, response, body);
        }
      } catch (e) {
        failing.add(name);
        etag = null;
      } finally {
        clearTimeout(abort);
        showConnection();
        running = false;
        timer = setTimeout(tick, again ? 0 : intervalMs);
        again = false;
      }
    }
    tick();
    return {
      // Poll at once (after the request in flight, if any).
      now: function () {
        etag = null;
        if (running) { again = true; } else { clearTimeout(timer); tick(); }
      },
    };
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
  }
  function pct(value) { return value === null || value === undefined ? "–" : Math.round(value * 100) + "%"; }
  function ms(value) { return value === null || value === undefined ? "–" : num(value, value < 10 ? 1 : 0); }
  function clock(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }
  function timeOfDay(epoch) { return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "–"; }

  /**
   * A string for Plotly to show as text. Plotly reads its own markup in trace names and
   * labels (<a href>, <span style>, <br>, entities): a team name could otherwise put a
   * link or a giant label on the projected chart. Plotly decodes these entities back.
   */
  function plotlyText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  /** Plotly layout colours from the page's CSS variables (follow the theme). */
  function chartLayout(extra) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim();
    const line = css.getPropertyValue("--line").trim();
    const axis = { gridcolor: line, zerolinecolor: line, linecolor: line, color: fg };
    const base = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg, family: "system-ui, sans-serif", size: 14 },
      margin: { l: 55, r: 15, t: 35, b: 45 }, xaxis: axis, yaxis: Object.assign({}, axis),
      legend: { orientation: "h", y: -0.2 },
    };
    return Object.assign(base, extra || {});
  }
  const chartConfig = { displaylogo: false, responsive: true, displayModeBar: false };

  const themeListeners = [];
  function onThemeChange(fn) { themeListeners.push(fn); }
  const toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
      document.documentElement.dataset.theme = next;
      try { localStorage.setItem("game-theme", next); } catch (e) { /* private mode */ }
      themeListeners.forEach(function (fn) { fn(); });
    });
  }

  return {
    el, setText, poll, num, pct, ms, clock, timeOfDay, plotlyText, chartLayout, chartConfig,
    onThemeChange,
  };
})();
