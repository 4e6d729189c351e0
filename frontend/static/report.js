/* vth-twin printable reports (gebiedsrapport, housing verdicts): wires the print button. A file, not an inline
 * handler, so that the page's Content-Security-Policy (no inline script) allows it. */
(function () {
  "use strict";
  function wire() {
    var button = document.getElementById("print-report");
    if (!button || button.getAttribute("data-wired")) return;
    button.setAttribute("data-wired", "1");
    button.addEventListener("click", function () { window.print(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
