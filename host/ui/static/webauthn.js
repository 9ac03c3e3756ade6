// Security keys and passkeys: runs navigator.credentials.create (a form
// with data-webauthn="create" and the creation options in data-options)
// or .get (data-webauthn="get": a click first asks data-start for fresh
// request options and the form's token bound to them: the sign-in page
// and the security page's step-up), then posts the browser's answer as
// JSON in the form's "credential" field. The base64url conversions are
// done here by hand: the options carry binary fields as base64url
// strings, and the answer goes back the same way. No library, no CDN.
(function () {
  "use strict";
  var form = document.querySelector("form[data-webauthn]");
  if (!form) {
    return;
  }
  var button = form.querySelector("[data-webauthn-go]");
  var errorBox = document.getElementById("webauthn-error");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    fail("This browser can't use security keys or passkeys. Use another browser, or a backup code.");
    if (button) { button.disabled = true; }
    return;
  }

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeIDs(list) {
    (list || []).forEach(function (c) { c.id = fromB64url(c.id); });
  }

  // creationOptions and requestOptions turn the server's JSON into what
  // the browser takes: ArrayBuffers where the spec has BufferSource.
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    decodeIDs(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    decodeIDs(pk.allowCredentials);
    return { publicKey: pk };
  }

  // answer is the PublicKeyCredential as JSON, binary fields base64url.
  function answer(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64url(r.userHandle); }
    }
    return JSON.stringify(out);
  }

  function fail(msg) {
    if (errorBox) {
      errorBox.textContent = msg;
      errorBox.hidden = false;
    }
    if (button) { button.disabled = false; }
  }

  // explain turns the browser's refusal into words for the user.
  function explain(err) {
    switch (err && err.name) {
      case "NotAllowedError":
        return "The request was cancelled or timed out. Try again when you're ready to use your key.";
      case "InvalidStateError":
        return "This security key is already registered for your account. Use another key.";
      case "SecurityError":
        return "This page's address is not allowed to use your security key. Contact support.";
      case "AbortError":
        return "The request was cancelled. Try again.";
    }
    return "Your security key could not be used (" + (err && err.name || "error") + "). Try again, or use a backup code.";
  }

  function submit(cred) {
    form.elements.credential.value = answer(cred);
    form.submit();
  }

  function create() {
    var opts = creationOptions(JSON.parse(form.getAttribute("data-options")));
    return navigator.credentials.create(opts).then(submit);
  }

  // get asks the server for a fresh challenge, then the browser for the
  // assertion: every attempt has its own single-use challenge.
  function get() {
    var body = new URLSearchParams();
    ["t", "csrf", "provider"].forEach(function (n) { body.set(n, form.elements[n].value); });
    return fetch(form.getAttribute("data-start"), {
      method: "POST", body: body, credentials: "same-origin", cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok || !j.public) {
          throw { name: "server", message: j.error || "The sign-in could not be started." };
        }
        return j;
      });
    }).then(function (j) {
      // The start binds the form's token to this challenge: the answer
      // goes back with that token (and its CSRF value), never the old one.
      form.elements.txid.value = j.txid;
      form.elements.t.value = j.t;
      form.elements.csrf.value = j.csrf;
      return navigator.credentials.get(requestOptions(JSON.parse(j.public))).then(submit);
    });
  }

  function go() {
    if (errorBox) { errorBox.hidden = true; }
    button.disabled = true;
    var run = form.getAttribute("data-webauthn") === "create" ? create : get;
    run().catch(function (err) {
      fail(err && err.name === "server" ? err.message : explain(err));
    });
  }

  button.addEventListener("click", go);
  form.addEventListener("submit", function (e) {
    if (!form.elements.credential.value) { // Enter in the label field
      e.preventDefault();
      go();
    }
  });
})();
