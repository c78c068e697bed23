// The on-screen keypad types into the code field, then the phone digits; a hand-held
// scanner types into the focused token field and presses Enter.
(function () {
  var fields = Array.prototype.slice.call(document.querySelectorAll("[data-keypad]"));
  var current = null;
  fields.forEach(function (field) { field.addEventListener("focus", function () { current = field; }); });
  document.querySelectorAll("[data-key]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = current;
      if (!field) { field = fields.find(function (f) { return f.value.length < f.maxLength; }) || fields[0]; }
      var key = button.getAttribute("data-key");
      if (key === "clear") { field.value = ""; }
      else if (key === "back") { field.value = field.value.slice(0, -1); }
      else if (field.value.length < field.maxLength) { field.value += key; }
      if (field.value.length >= field.maxLength && field === fields[0]) { current = fields[1]; }
    });
  });
})();
