// Campaign countdowns (templates/campaigns/_macros.html): each [data-countdown] element carries
// the window's start and end (ISO, UTC) and the server's "now"; the time left to the next
// boundary is shown beside the plain start and end times, and the page reloads once the boundary
// is reached (the server then shows the new state and prices). Without JavaScript the plain
// times remain. The server's clock is the reference: the browser's may be off.
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-countdown]");
  if (!boxes.length) return;
  var loadedAt = Date.now();
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var reload = false;
    boxes.forEach(function (box) {
      var serverNow = Date.parse(box.dataset.now) + (Date.now() - loadedAt);
      var state = box.dataset.state;
      var target = null, label = "";
      if (state === "scheduled") { target = Date.parse(box.dataset.starts); label = box.dataset.toStart; }
      else if (state === "running") { target = Date.parse(box.dataset.ends); label = box.dataset.toEnd; }
      var out = box.querySelector(".countdown");
      if (target === null || isNaN(target) || !out) return;
      var left = Math.floor((target - serverNow) / 1000);
      if (left <= 0) { reload = true; return; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
      var m = Math.floor(left % 3600 / 60), s = left % 60;
      out.textContent = label + " " + (d ? d + box.dataset.days + " " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
    });
    if (reload) { window.setTimeout(function () { window.location.reload(); }, 1000); return; }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
