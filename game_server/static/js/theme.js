// Apply the remembered colour theme before the page paints (dark is the default).
"use strict";
(function () {
  let theme = "dark";
  try { theme = localStorage.getItem("game-theme") || "dark"; } catch (e) { /* private mode */ }
  document.documentElement.dataset.theme = theme === "light" ? "light" : "dark";
})();
