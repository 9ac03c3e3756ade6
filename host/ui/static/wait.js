// Polls a pending push and moves on once it is answered. Without
// JavaScript the page refreshes itself instead (a <noscript> refresh).
// Same-origin credentials: an approval the user asked to remember sets the
// device cookie on this poll's answer.
(function () {
  "use strict";
  var el = document.querySelector("[data-poll]");
  if (!el || !window.fetch) {
    return;
  }
  var url = el.getAttribute("data-poll");
  function tick() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j && j.next) {
          window.location.replace(j.next);
          return;
        }
        window.setTimeout(tick, 1500);
      })
      .catch(function () { window.setTimeout(tick, 4000); });
  }
  window.setTimeout(tick, 1000);
})();
