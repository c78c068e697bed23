// The WeChat Pay QR page: while the patient scans with their phone, ask every few seconds
// whether the hold is still waiting (a read, nothing more); once it is not, open the
// payment result page. Without scripts the "I have paid" link does the same.
(function () {
  "use strict";
  function watch(box) {
    var url = box.getAttribute("data-wait");
    var done = box.getAttribute("data-done");
    var tries = 0;
    function check() {
      tries += 1;
      if (tries > 300) { return; }
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (state) {
          if (state && state.status !== "held") { window.location.assign(done); }
          else { window.setTimeout(check, 3000); }
        })
        .catch(function () { window.setTimeout(check, 5000); });
    }
    window.setTimeout(check, 3000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-wait]");
    if (box) { watch(box); }
  });
})();
