// The page's only script besides htmx (a static file: the CSP allows no inline script).
// Shows a range slider's value next to it while it moves; htmx sends the form on change.
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
})();
