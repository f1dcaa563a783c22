// Passkeys (WebAuthn): register one on the Security page; sign in or confirm with one.
// Without JavaScript or WebAuthn the pages say so and the code forms still work.
(function () {
  "use strict";

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, function (c) { return c.charCodeAt(0); }).buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: body === undefined ? "{}" : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || "The server refused (" + response.status + ")."); }
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, {id: toBytes(d.id)}); });
  }

  function credentialJSON(credential) {
    var r = credential.response, response = {clientDataJSON: toText(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) { response.userHandle = toText(r.userHandle); }
    }
    return {id: credential.id, rawId: toText(credential.rawId), type: credential.type, response: response,
            clientExtensionResults: credential.getClientExtensionResults(),
            authenticatorAttachment: credential.authenticatorAttachment || undefined};
  }

  function say(area, text) { area.querySelector(".passkey-status").textContent = text; }

  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  document.querySelectorAll("[data-passkey-register]").forEach(function (area) {
    var form = area.querySelector(".passkey-register-form");
    var note = area.querySelector(".needs-js");
    if (!supported) { note.textContent = "This browser cannot use passkeys here (it needs WebAuthn over HTTPS or localhost)."; return; }
    note.hidden = true;
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = form.elements.name.value.trim();
      if (!name) { say(area, "Give the passkey a name first."); form.elements.name.focus(); return; }
      say(area, "Follow your browser's prompt…");
      post(area.dataset.options, area.dataset.csrf).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.user.id = toBytes(options.user.id);
        options.excludeCredentials = descriptors(options.excludeCredentials);
        return navigator.credentials.create({publicKey: options});
      }).then(function (credential) {
        return post(area.dataset.register, area.dataset.csrf, {name: name, credential: credentialJSON(credential)});
      }).then(function (data) { window.location.assign(data.redirect); })
        .catch(function (error) { say(area, "No passkey was added: " + error.message); });
    });
  });

  document.querySelectorAll("[data-passkey-sign-in]").forEach(function (area) {
    var button = area.querySelector(".passkey-button");
    var note = area.querySelector(".needs-js");
    if (!supported) { if (note) { note.textContent = "This browser cannot use passkeys here: use a code instead."; } return; }
    if (note) { note.hidden = true; }
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      say(area, "Follow your browser's prompt…");
      post(area.dataset.options, area.dataset.csrf).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.allowCredentials = descriptors(options.allowCredentials);
        return navigator.credentials.get({publicKey: options});
      }).then(function (credential) {
        return post(area.dataset.verify, area.dataset.csrf, {credential: credentialJSON(credential)});
      }).then(function (data) { window.location.assign(data.redirect); })
        .catch(function (error) { say(area, "Not signed in: " + error.message); button.disabled = false; });
    });
  });
}());
