// Progressive enhancement only: every form works without this file. It adds the Copy button for a new secret
// and a confirmation dialog before revoking. The secret is never written to storage, a URL or the console.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // The page that shows a new secret is the answer to a POST. Turning its history entry into a plain GET of the
  // list means a reload or Back shows the list (secret gone, as promised) instead of re-sending the form, which
  // would create a second token.
  if (document.getElementById("new-token-secret") && window.history.replaceState) {
    window.history.replaceState(null, "", "/webapp/");
  }

  var copy = document.getElementById("copy-secret");
  if (copy) {
    var field = document.getElementById(copy.getAttribute("data-copy-target"));
    var status = document.getElementById("copy-status");
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var done = function (ok) {
        status.textContent = ok ? "Copied to the clipboard." : "Copy failed: select the token and copy it by hand.";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(false); });
      } else {
        // Plain-HTTP pages have no async clipboard API; fall back to selecting the text.
        field.focus();
        field.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        done(ok);
      }
    });
    // Selecting the whole secret on focus makes manual copying one keystroke.
    field.addEventListener("focus", function () { field.select(); });
  }

  var forms = document.querySelectorAll("form.revoke");
  for (var i = 0; i < forms.length; i++) {
    forms[i].addEventListener("submit", function (event) {
      var form = event.currentTarget;
      var name = form.getAttribute("data-token-name");
      if (window.confirm("Revoke the token \u201c" + name + "\u201d? Apps that use it stop working at once.")) {
        form.querySelector("input[name=confirmed]").value = "yes";
      } else {
        event.preventDefault();
      }
    });
  }
});
