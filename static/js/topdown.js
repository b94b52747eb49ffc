/* Small behaviours shared by every page. The site works without them. */
(function () {
  "use strict";

  // Dismiss buttons on message alerts.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (!button) {
      return;
    }
    var alert = button.closest(".alert");
    if (alert) {
      var item = alert.closest("li") || alert;
      item.remove();
    }
  });
})();
