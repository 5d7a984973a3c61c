// A ServiceNow connection form (the setup page and the Django admin): show only the
// credential fields of the chosen auth type. The <select data-auth-fields> says which
// fields each type uses; a field's row is [data-field="name"] on the setup page and
// .field-name in the admin. Without this script the setup page shows the fields of the type
// it was rendered with (a changed type shows its fields when the form comes back with what
// it lacks), the admin shows them all, and either way the server decides: it clears another
// type's credentials on save.
(function () {
  "use strict";

  function rowOf(form, name) {
    return form.querySelector('[data-field="' + name + '"]') ||
      form.querySelector(".form-row.field-" + name) ||
      form.querySelector(".fieldBox.field-" + name);
  }

  function apply(select) {
    var form = select.form;
    if (!form) return;
    var byType = JSON.parse(select.getAttribute("data-auth-fields"));
    var shown = byType[select.value] || [];
    Object.keys(byType).forEach(function (type) {
      byType[type].forEach(function (name) {
        var row = rowOf(form, name);
        if (row) row.hidden = shown.indexOf(name) === -1;
      });
    });
  }

  function applyAll() {
    document.querySelectorAll("select[data-auth-fields]").forEach(apply);
  }

  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-auth-fields]")) apply(e.target);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", applyAll);
  } else {
    applyAll();
  }
  // A form swapped in by htmx (the setup page re-renders it with its errors).
  document.addEventListener("htmx:afterSettle", applyAll);
})();
