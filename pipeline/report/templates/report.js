(function () {
  "use strict";
  function setAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  document.querySelectorAll(".controls").forEach(function (c) { c.hidden = false; });
  document.querySelectorAll("[data-expand]").forEach(function (button) {
    button.addEventListener("click", function () { setAll(button.getAttribute("data-expand") === "all"); });
  });
  window.addEventListener("beforeprint", function () { setAll(true); });
})();
