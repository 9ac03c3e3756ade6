// The lockout page's "Try again in 29 seconds", counted down. The server
// renders the starting value and the milliseconds left (data-left); the
// count runs on this page's monotonic clock, so a wrong clock on the
// device changes nothing. At zero the page says so.
(function () {
  "use strict";
  var el = document.getElementById("countdown");
  if (!el) {
    return;
  }
  var left = parseInt(el.getAttribute("data-left"), 10);
  if (!(left > 0)) {
    return;
  }
  var end = performance.now() + left;
  // The same words as the server's humanDuration, rounded up.
  function words(ms) {
    var s = Math.ceil(ms / 1000), m = Math.ceil(ms / 60000), h = Math.ceil(ms / 3600000);
    if (s <= 1) { return "a second"; }
    if (s < 60) { return s + " seconds"; }
    if (s === 60) { return "a minute"; }
    if (m < 60) { return m + " minutes"; }
    if (m === 60) { return "an hour"; }
    if (h < 48) { return h + " hours"; }
    return Math.ceil(ms / 86400000) + " days";
  }
  function tick() {
    var ms = end - performance.now();
    if (ms <= 0) {
      el.textContent = "You can try again now.";
      var retry = document.getElementById("retry");
      if (retry) {
        retry.focus();
      }
      return;
    }
    el.textContent = "Try again in " + words(ms) + ".";
    window.setTimeout(tick, Math.min(1000, (ms % 1000) || 1000));
  }
  tick();
})();
