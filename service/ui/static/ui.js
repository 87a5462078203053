// The page's only script besides htmx (a static file: the CSP allows no inline script).
// Shows a range slider's value next to it while it moves; htmx sends the form on change.
// After htmx swaps a part of the page, says its outcome (an element marked data-announce)
// through #announcer, a live region that is never swapped: a region inserted together with
// its text is not read out by screen readers. Focus is kept by htmx itself (the forms'
// buttons have ids, so the swapped-in button takes the focus back).
(function () {
  "use strict";
  function percent(value) {
    return Math.round(parseFloat(value) * 100) + "%";
  }
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "range") return;
    var output = document.getElementById(input.dataset.output || "");
    if (output) output.textContent = percent(input.value);
  });
  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";
    // A change after a pause, so that the same words said twice are said again.
    window.setTimeout(function () { region.textContent = text; }, 50);
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target;
    if (!(root instanceof Element)) return;
    var source = root.matches("[data-announce]") ? root : root.querySelector("[data-announce]");
    if (source) announce(source.textContent.replace(/\s+/g, " ").trim());
  });
})();
