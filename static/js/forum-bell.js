/*
 * The notification bell in the navigation: after the page has loaded, ask how many forum
 * notifications are unread and show the number. Without JavaScript the bell is a plain link.
 * Asked after the page, not while rendering it, so no page pays a query for it.
 */
(function () {
  "use strict";

  function update() {
    var bell = document.querySelector("[data-notification-bell]");
    if (!bell || !window.fetch) {
      return;
    }
    var badge = bell.querySelector("[data-notification-count]");
    window
      .fetch(bell.getAttribute("data-count-url"), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || !badge) {
          return;
        }
        var unread = data.unread || 0;
        badge.textContent = unread > 99 ? "99+" : String(unread);
        badge.hidden = unread === 0;
        bell.setAttribute(
          "aria-label",
          unread === 0 ? "Notifications" : "Notifications, " + unread + " unread"
        );
        bell.setAttribute("data-unread", String(unread));
      })
      .catch(function () {
        /* The bell stays a plain link. */
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", update);
  } else {
    update();
  }
})();
