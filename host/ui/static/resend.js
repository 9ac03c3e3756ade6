// Counts down the "Resend in 27 s" button of a page where a code was
// sent. The server rendered the seconds left by its own clock; this only
// counts them down on the browser's, and enables the button at zero.
// Without JavaScript the button stays enabled: the server refuses an early
// resend and says how long is left.
(function () {
  "use strict";
  var btn = document.querySelector("[data-resend-in]");
  if (!btn) {
    return;
  }
  var left = parseInt(btn.getAttribute("data-resend-in"), 10) || 0;
  function show() {
    if (left > 0) {
      btn.disabled = true;
      btn.textContent = "Resend in " + left + " s";
      left -= 1;
      window.setTimeout(show, 1000);
      return;
    }
    btn.disabled = false;
    btn.textContent = "Resend code";
  }
  show();
})();
