// A button marked data-print prints the page (the print style sheet keeps the slip only).
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
