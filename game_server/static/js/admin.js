// The instructor page: show the control log's times as local clock times.
"use strict";
document.querySelectorAll("td.when").forEach(function (td) {
  const at = Number(td.dataset.at);
  if (at) td.textContent = new Date(at * 1000).toLocaleTimeString();
});
