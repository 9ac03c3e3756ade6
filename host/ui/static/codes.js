// Backup codes: copy them, download them as a .txt file, or print them
// (style.css's print rules print the codes alone). The buttons stay hidden
// without JavaScript; the codes are on the page either way.
(function () {
  "use strict";
  var list = document.getElementById("recovery-codes");
  var bar = document.getElementById("code-actions");
  if (!list || !bar) {
    return;
  }
  var status = document.getElementById("codes-status");
  var codes = [];
  list.querySelectorAll("code").forEach(function (c) { codes.push(c.textContent.trim()); });
  var text = "Backup codes for two-step verification\n" +
    "Each code lets you sign in once. Keep them somewhere safe.\n\n" +
    codes.join("\n") + "\n";
  function say(msg) {
    if (status) {
      status.textContent = msg;
    }
  }

  // The file is built here, from the codes on the page: nothing is asked
  // of the server again.
  var download = document.getElementById("download-codes");
  download.setAttribute("href", "data:text/plain;charset=utf-8," + encodeURIComponent(text));
  download.addEventListener("click", function () { say("Downloaded backup-codes.txt."); });

  document.getElementById("copy-codes").addEventListener("click", function () {
    function fallback() {
      // Older browsers, or no clipboard permission: select and copy.
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      say(ok ? "Copied to the clipboard." : "Copy failed: select the codes and copy them yourself.");
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { say("Copied to the clipboard."); }, fallback);
    } else {
      fallback();
    }
  });

  document.getElementById("print-codes").addEventListener("click", function () { window.print(); });
  bar.hidden = false;
})();
