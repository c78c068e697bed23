// The staff home's menu narrows as one types: every word must occur in an entry's label,
// description or keywords (both languages), as the server's ?q= search does without script.
(function () {
  var box = document.querySelector("[data-menu-filter]");
  if (!box) { return; }
  var entries = Array.prototype.slice.call(document.querySelectorAll("[data-menu-entry]"));
  var none = document.querySelector("[data-menu-none]");
  function apply() {
    var words = box.value.toLowerCase().split(/\s+/).filter(function (w) { return w; });
    var shown = 0;
    entries.forEach(function (entry) {
      var text = entry.getAttribute("data-search") || "";
      var match = words.every(function (w) { return text.indexOf(w) >= 0; });
      entry.hidden = !match;
      if (match) { shown += 1; }
    });
    if (none) { none.hidden = shown > 0; }
  }
  box.addEventListener("input", apply);
  apply();
})();
