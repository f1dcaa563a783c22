// Progressive enhancement for the admin portal; every page works without it.
(function () {
  "use strict";

  // Copy buttons on the shown-once pages.
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copyTarget);
    var status = button.parentElement.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      source.select();
      var done = function () { if (status) { status.textContent = "Copied."; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });

  // "Select all on this page": ticks or clears every row's checkbox of the same name.
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var boxes = all.form.querySelectorAll("input[type=checkbox][name='" + all.dataset.selectAll + "']");
    all.hidden = false;
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
    });
    var count = all.form.querySelector("[data-selection-count]");
    var update = function () {
      var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
      if (count) {
        count.textContent = ticked === 0 ? "Select tokens to act on several at once."
          : ticked + (ticked === 1 ? " token selected" : " tokens selected");
      }
      all.form.querySelectorAll(".bulk-bar button").forEach(function (b) { b.disabled = ticked === 0; });
      all.form.querySelectorAll(".bulk-bar").forEach(function (bar) { bar.classList.toggle("idle", ticked === 0); });
    };
    all.addEventListener("change", update);
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  });

  // Expiry presets: the custom date field shows only when "Custom date" is chosen.
  document.querySelectorAll(".expiry-presets").forEach(function (set) {
    var custom = set.querySelector("[data-custom-expiry]");
    var radios = set.querySelectorAll("[data-expiry-choice]");
    var sync = function () {
      var chosen = set.querySelector("[data-expiry-choice]:checked");
      custom.hidden = !(chosen && chosen.value === "custom");
    };
    radios.forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });

  // The tenant-permission editor: add and remove rows in place.
  var editor = document.querySelector(".perm-editor");
  if (editor) {
    var body = document.getElementById("perm-rows");
    var template = document.getElementById("perm-row-template");
    var next = parseInt(editor.dataset.nextIndex, 10) || 0;
    // A global action (CREATE_TENANT) can be granted only on the * row: the token core's rule.
    var offer = function (row) {
      var tenant = row.querySelector("select.perm-tenant").value;
      row.querySelectorAll("input[data-global=yes]").forEach(function (box) {
        var offered = tenant === "*" || tenant === "";
        if (!offered) { box.checked = false; }
        box.disabled = !offered;
        box.parentElement.classList.toggle("not-offered", !offered);
      });
    };
    body.addEventListener("change", function (event) {
      if (event.target.matches("select.perm-tenant")) { offer(event.target.closest(".perm-row")); }
    });
    var bindRemove = function (row) {
      var button = row.querySelector(".perm-remove");
      if (button) {
        button.type = "button";
        button.addEventListener("click", function () { row.remove(); });
      }
    };
    body.querySelectorAll(".perm-row").forEach(bindRemove);
    var addRow = function () {
      var html = template.innerHTML.split("__INDEX__").join(String(next));
      next += 1;
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var row = holder.firstElementChild;
      body.appendChild(row);
      bindRemove(row);
      return row;
    };
    var add = document.getElementById("add-perm-row");
    add.type = "button";
    add.addEventListener("click", function () { addRow().querySelector("select").focus(); });
    // A row for one tenant in one click: the first blank row takes it, else a new row does
    // (as the server does without JavaScript); a tenant with a row already gets no second.
    editor.querySelectorAll("[data-add-tenant]").forEach(function (button) {
      button.type = "button";
      button.addEventListener("click", function () {
        var tenant = button.dataset.addTenant;
        var selects = Array.prototype.slice.call(body.querySelectorAll("select.perm-tenant"));
        var taken = selects.filter(function (s) { return s.value === tenant; })[0];
        if (taken) { taken.focus(); return; }
        var blank = selects.filter(function (s) { return s.value === ""; })[0];
        var select = blank || addRow().querySelector("select");
        select.value = tenant;
        offer(select.closest(".perm-row"));
        select.focus();
      });
    });
  }

  // The user picker: suggest users by username or email as the admin types.
  var form = document.querySelector("form[data-user-search]");
  var input = form && form.querySelector("input[list='user-options']");
  if (input) {
    var list = document.getElementById("user-options");
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 1) { return; }
      timer = setTimeout(function () {
        fetch(form.dataset.userSearch + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (users) {
            list.replaceChildren();
            users.forEach(function (u) {
              var option = document.createElement("option");
              option.value = u.username;
              option.label = u.email ? u.username + " <" + u.email + ">" : u.username;
              list.appendChild(option);
            });
          })
          .catch(function () {});
      }, 200);
    });
  }
})();
