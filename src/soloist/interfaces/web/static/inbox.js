// The inbox's keys: j/k move between items, a approves the selected one, r goes to its
// reason field (Enter then rejects), e opens its edit form (approve as edited). Keys
// typed into a field are the field's.
(function () {
  "use strict";
  let selected = 0;

  function items() { return Array.from(document.querySelectorAll("#inbox .item")); }

  function mark() {
    const all = items();
    if (!all.length) { return null; }
    selected = Math.max(0, Math.min(selected, all.length - 1));
    all.forEach(function (item, i) { item.classList.toggle("selected", i === selected); });
    return all[selected];
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey ||
        (target && target.closest && target.closest("input, textarea, select"))) {
      return;
    }
    const key = event.key;
    if (key === "j" || key === "k") {
      selected += key === "j" ? 1 : -1;
      const item = mark();
      if (item) { item.scrollIntoView({block: "nearest"}); item.focus(); }
    } else if (key === "a") {
      const item = mark();
      if (item) { item.querySelector("button.approve").click(); }
    } else if (key === "r") {
      const item = mark();
      if (item) { event.preventDefault(); item.querySelector("input.reason").focus(); }
    } else if (key === "e") {
      const item = mark();
      const edit = item && item.querySelector("details.edit");
      if (edit) {
        event.preventDefault();
        edit.open = true;
        const first = edit.querySelector("input.edit-subject, textarea.edit-args");
        if (first) { first.focus(); }
      }
    } else {
      return;
    }
  });

  // The list is refreshed while the page is open: keep the selection where it was.
  document.addEventListener("htmx:afterSwap", mark);
  document.addEventListener("DOMContentLoaded", mark);
})();
