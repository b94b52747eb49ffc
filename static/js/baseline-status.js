/* The assignment editor's baselines, live: while a run is queued or running, polls the status
 * endpoint every 2 s and redraws each baseline's row in place (the server renders the rows, with
 * the same partial as the page). Stops once every run has finished. Without JavaScript the panel
 * offers a plain refresh link. */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_FAILURES = 5;

  var panel = document.querySelector("[data-baseline-status-url]");
  if (!panel) {
    return;
  }
  var url = panel.getAttribute("data-baseline-status-url");
  var live = panel.querySelector("[data-baseline-live]");
  var failures = 0;
  var timer = null;

  function say(text) {
    if (live) {
      live.textContent = text;
    }
  }

  function replaceRow(baseline) {
    var row = panel.querySelector('[data-baseline-row="' + baseline.id + '"]');
    if (!row || row.getAttribute("data-status") === baseline.status) {
      return false;
    }
    var template = document.createElement("template");
    template.innerHTML = baseline.html.trim();
    var fresh = template.content.firstElementChild;
    if (fresh) {
      row.replaceWith(fresh);
    }
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        var changed = data.baselines.map(replaceRow).some(Boolean);
        if (data.active) {
          var active = data.baselines.filter(function (b) {
            return b.status === "queued" || b.status === "running";
          }).length;
          say(active + " baseline run" + (active === 1 ? "" : "s") + " in progress; this table updates by itself.");
          schedule();
        } else {
          say(changed || panel.hasAttribute("data-active") ? "Every baseline run has finished." : "");
          panel.removeAttribute("data-active");
        }
      })
      .catch(function () {
        failures += 1;
        if (failures < MAX_FAILURES) {
          schedule();
        } else {
          say("Lost touch with the server; reload the page to see the latest status.");
        }
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, POLL_MS);
  }

  if (panel.hasAttribute("data-active")) {
    say("Runs in progress; this table updates by itself.");
    schedule();
  }
})();
