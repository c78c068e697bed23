// Live pages over Server-Sent Events, no build step. An element with data-live="URL"
// opens an EventSource: each "state" event carries {html} that replaces the element's
// content; "call" events carry {text, lang} to announce with speech synthesis once the
// viewer has allowed sound (browsers block audio until someone taps the page).
(function () {
  "use strict";
  var soundOn = false;

  function speak(text, lang) {
    if (!soundOn || !("speechSynthesis" in window)) { return; }
    var utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = lang || "zh-CN";
    utterance.rate = 0.9;
    window.speechSynthesis.speak(utterance);
  }

  function connect(target) {
    var dot = document.querySelector("[data-live-dot]");
    var source = new EventSource(target.getAttribute("data-live"));
    source.addEventListener("state", function (message) {
      var data = JSON.parse(message.data);
      if (typeof data.html === "string") {
        target.innerHTML = data.html;
        if (window.htmx) { window.htmx.process(target); }
      }
      target.setAttribute("data-live-state", "connected");
      if (dot) { dot.classList.remove("off"); }
    });
    source.addEventListener("call", function (message) {
      var data = JSON.parse(message.data);
      speak(data.text, data.lang);
      var log = document.querySelector("[data-live-announcements]");
      if (log) { log.textContent = data.text; }
    });
    source.onerror = function () {
      // The browser reconnects by itself (the stream's retry hint) and the first event
      // after it is the current state again.
      target.setAttribute("data-live-state", "reconnecting");
      if (dot) { dot.classList.add("off"); }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector("[data-enable-sound]");
    if (button) {
      button.addEventListener("click", function () {
        soundOn = true;
        speak(button.getAttribute("data-test-phrase") || "", "zh-CN");
        button.hidden = true;
      });
    }
    document.querySelectorAll("[data-live]").forEach(connect);
  });
})();
