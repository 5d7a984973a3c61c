// The inbox, enhanced: type-ahead over the expectation checkboxes, "all on this page",
// and keyboard triage. Everything here is optional: without it the page is plain forms
// and checkboxes (apps/evidence/templates/evidence/inbox.html). No inline script: the
// page loads this file with <script src defer> (CSP).
//
//   j / k      next / previous item          x      tick or untick the current item
//   a / d      accept / dismiss the current   A / D  accept / dismiss every ticked item
//   l          open the current item's links  /      search
//
// A row's picker holds only its ticked expectations until it opens; then the page's one
// whole picker (<template id="picker-template">) is cloned into it (fillPicker).
(function () {
  "use strict";

  var list = document.getElementById("inbox-list");
  if (!list) return;
  var bulk = document.getElementById("bulk");
  var current = null;
  var currentIndex = 0;

  function rows() {
    return Array.prototype.slice.call(list.querySelectorAll("article.inbox-item"));
  }

  function tickOf(row) {
    return row.querySelector('input[name="ids"]');
  }

  function setCurrent(row) {
    if (current && current !== row) current.classList.remove("current");
    current = row || null;
    if (!current) return;
    current.classList.add("current");
    currentIndex = rows().indexOf(current);
    current.scrollIntoView({ block: "nearest" });
  }

  // After a row is accepted or dismissed (htmx swaps it out), the next one is current.
  function currentRow() {
    if (current && current.isConnected) return current;
    var all = rows();
    if (!all.length) return null;
    setCurrent(all[Math.min(currentIndex, all.length - 1)]);
    return current;
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var row = current && current.isConnected ? current : null;
    var i = row ? all.indexOf(row) + step : Math.min(currentIndex, all.length - 1);
    setCurrent(all[Math.max(0, Math.min(all.length - 1, i))]);
  }

  function click(row, action) {
    var button = row && row.querySelector('button[data-action="' + action + '"]');
    if (button) button.click();
  }

  function bulkSubmit(action) {
    if (!bulk) return;
    var button = bulk.querySelector('button[name="action"][value="' + action + '"]');
    if (button && document.querySelector('input[name="ids"][form="bulk"]:checked')) {
      if (bulk.requestSubmit) bulk.requestSubmit(button);
      else button.click();
    }
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var row;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x":
        row = currentRow();
        if (row) { tickOf(row).checked = !tickOf(row).checked; syncAll(); }
        break;
      case "a": click(currentRow(), "accept"); break;
      case "d": click(currentRow(), "dismiss"); break;
      case "A": bulkSubmit("accept"); break;
      case "D": bulkSubmit("dismiss"); break;
      case "l":
        row = currentRow();
        if (row) {
          var details = row.querySelector("details.picker");
          details.open = true;
          fillPicker(details.querySelector("[data-picker]"));
          var filter = details.querySelector(".picker-filter");
          if (filter) filter.focus();
        }
        break;
      case "/":
        var search = document.getElementById("id_q");
        if (search) search.focus();
        break;
      default: return;
    }
    event.preventDefault();
  });

  // A row accepted or dismissed in place: the one that took its place is current.
  document.body.addEventListener("htmx:afterSettle", function () {
    if (current && !current.isConnected) currentRow();
  });

  list.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("article.inbox-item");
    if (row) setCurrent(row);
  });

  // "All on this page" ticks every row; it shows mixed when only some are ticked.
  var all = document.getElementById("select-all");
  function syncAll() {
    if (!all) return;
    var ticks = rows().map(tickOf);
    var on = ticks.filter(function (t) { return t.checked; }).length;
    all.checked = ticks.length > 0 && on === ticks.length;
    all.indeterminate = on > 0 && on < ticks.length;
  }
  if (all) {
    all.addEventListener("change", function () {
      rows().forEach(function (row) { tickOf(row).checked = all.checked; });
    });
    list.addEventListener("change", function (event) {
      if (event.target.name === "ids") syncAll();
    });
    document.body.addEventListener("htmx:afterSwap", syncAll);
  }

  // Type-ahead: a filter box on top of each picker hides the expectations that do not
  // match (code or text); the folded "your level and below" opens when it has matches.
  function enhancePicker(body) {
    if (body.dataset.enhanced) return;
    body.dataset.enhanced = "1";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "picker-filter";
    input.placeholder = "Type to filter, e.g. TE-3 or latency";
    input.setAttribute("aria-label", "Filter expectations");
    body.insertBefore(input, body.firstChild);
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      body.querySelectorAll(".picker-group").forEach(function (group) {
        var shown = 0;
        group.querySelectorAll("label.pick").forEach(function (label) {
          var hit = !q || label.textContent.toLowerCase().indexOf(q) !== -1;
          label.hidden = !hit;
          if (hit) shown += 1;
        });
        group.hidden = shown === 0;
      });
      var more = body.querySelector("details.picker-more");
      if (more && q) more.open = more.querySelector("label.pick:not([hidden])") !== null;
    });
    // Enter in the filter ticks the single match instead of submitting the form.
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      var visible = body.querySelectorAll("label.pick:not([hidden]) input");
      if (visible.length === 1) {
        visible[0].checked = !visible[0].checked;
        visible[0].dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
    body.addEventListener("change", function () {
      var summary = body.parentNode.querySelector(".chosen");
      if (summary) {
        var n = body.querySelectorAll('input[name="expectations"]:checked').length;
        summary.textContent = "(" + n + " chosen)";
      }
    });
  }

  // A row carries only its ticked expectations (data-picker-lazy) until its picker opens:
  // then the page's one whole picker (<template id="picker-template">) is cloned in, with
  // the same ticks.
  var template = document.getElementById("picker-template");
  function fillPicker(body) {
    if (!body || !body.hasAttribute("data-picker-lazy") || !template) return;
    var chosen = {};
    body.querySelectorAll('input[name="expectations"]:checked').forEach(function (input) {
      chosen[input.value] = true;
    });
    var whole = template.content.cloneNode(true);
    whole.querySelectorAll('input[name="expectations"]').forEach(function (input) {
      input.checked = chosen[input.value] === true;
    });
    body.textContent = "";
    body.appendChild(whole);
    body.removeAttribute("data-picker-lazy");
    enhancePicker(body);
  }
  // toggle does not bubble: listen while it goes down
  list.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.matches && details.matches("details.picker") && details.open) {
      fillPicker(details.querySelector("[data-picker]"));
    }
  }, true);

  function enhance(root) {
    root.querySelectorAll("[data-picker]:not([data-picker-lazy])").forEach(enhancePicker);
  }
  enhance(document);
  // A row sent back with its errors (422) comes with a fresh picker.
  document.body.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });

  var keys = document.getElementById("inbox-keys");
  if (keys) keys.hidden = false;
})();
