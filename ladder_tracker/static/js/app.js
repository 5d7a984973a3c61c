// Page behaviour that used to sit in inline scripts and on* / hx-on attributes, so that the
// Content-Security-Policy can forbid inline script (script-src 'self'). htmx runs with
// allowEval off (base.html), so nothing here is built from strings.
(function () {
  "use strict";

  // <select data-autosubmit>: choosing an option submits its form (the version and cycle
  // pickers); a <noscript> button does it without JavaScript.
  document.addEventListener("change", function (e) {
    var select = e.target.closest && e.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });

  // A private item picked in the packet builder (input[data-private-title]): ask to share it
  // with the reviewers; yes ticks its "Share with my reviewers" boxes, no unticks the pick.
  // Without JavaScript the engineer ticks the share box by hand (the server refuses a
  // private pick without it).
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("input[data-private-title]") || !box.checked) return;
    var shares = Array.prototype.filter.call(
      box.form.querySelectorAll('input[name="' + box.dataset.shareBox + '"]'),
      function (b) { return b.value === box.dataset.evidenceId; }
    );
    if (shares.some(function (b) { return b.checked; })) return;
    var question = "\u201c" + box.dataset.privateTitle + "\u201d is private. Share it with " +
      "your reviewers? Your managers will then see it.";
    if (window.confirm(question)) {
      shares.forEach(function (b) { b.checked = true; });
    } else {
      box.checked = false;
    }
  }, true);

  // <form data-autosave>: ticks save at once (event "autosave-now"), typing after a pause
  // ("autosave-later", debounced by the form's hx-trigger). Submit and Save post the whole
  // form, so a save still waiting when the page is left is dropped rather than raced.
  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("form[data-autosave]");
    if (form && e.target.type === "checkbox") htmx.trigger(form, "autosave-now");
  });
  document.addEventListener("input", function (e) {
    var form = e.target.closest && e.target.closest("form[data-autosave]");
    if (form && e.target.type !== "checkbox") htmx.trigger(form, "autosave-later");
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.matches && form.matches("form[data-autosave]")) {
      form.dataset.leaving = "1";
      htmx.trigger(form, "htmx:abort");
    }
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.target.closest && e.target.closest("form[data-autosave]");
    if (form && form.dataset.leaving) e.preventDefault();
  });

  // data-swap-statuses="400 409" on a page's <main> (or any ancestor of the element that
  // made the request): those answers are swapped in like a 200 (they carry the fragment and
  // the reason), instead of being dropped as errors.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var elt = (e.detail.requestConfig && e.detail.requestConfig.elt) || e.target;
    var holder = elt && elt.closest && elt.closest("[data-swap-statuses]");
    if (!holder) return;
    var statuses = holder.getAttribute("data-swap-statuses").split(/\s+/);
    if (statuses.indexOf(String(e.detail.xhr.status)) !== -1) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
