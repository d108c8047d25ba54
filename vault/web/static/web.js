// Comfort only: every page works without this file (docs/web.md "JavaScript").
"use strict";
(function () {
  // Quick exit: replace this page in the history, so Back does not return to the vault.
  function leave(event) {
    if (event) { event.preventDefault(); }
    window.location.replace("/exit");
  }
  var exit = document.getElementById("quick-exit");
  if (exit) { exit.addEventListener("click", leave); }
  // Escape pressed twice quickly leaves as well.
  var last = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    if (now - last < 800) { leave(); }
    last = now;
  });
  // A form is sent once: its button is disabled after the first submit (the server refuses
  // a second one anyway).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  });
})();
