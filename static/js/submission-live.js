/* A queued or running submission, live: polls its status endpoint every second and grows the
 * log and the training curve from the offsets it already has; reloads the page once the run has
 * finished, so the result is drawn by the server. Without JavaScript the page says to reload. */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var MAX_LOG_CHARS = 300000; // what the page keeps; the server caps the log lower
  var SVG = "http://www.w3.org/2000/svg";
  var AXES = ["epoch", "step", "iteration", "batch"];

  var panel = document.querySelector("[data-live-run]");
  if (!panel) {
    return;
  }
  var statusUrl = panel.getAttribute("data-status-url");
  var logBox = panel.querySelector("[data-live-log]");
  var state = panel.querySelector("[data-live-state]");
  var chartFigure = panel.querySelector("[data-live-chart]");
  var chartBody = panel.querySelector("[data-live-chart-body]");
  var logLength = parseInt(panel.getAttribute("data-log-length"), 10) || 0;
  var metricsLength = 0; // the page starts without the points: fetch them all
  var points = [];
  var failures = 0;
  var lastStatus = document.getElementById("run-status").getAttribute("data-status");

  function field(name) {
    return panel.querySelector('[data-live="' + name + '"]');
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "–";
    }
    seconds = Math.round(seconds);
    if (seconds < 60) {
      return seconds + " s";
    }
    var minutes = Math.floor(seconds / 60);
    return minutes + " min " + (seconds % 60) + " s";
  }

  function atBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  }

  function appendLog(text) {
    var follow = atBottom(logBox);
    logBox.textContent += text;
    if (logBox.textContent.length > MAX_LOG_CHARS) {
      logBox.textContent = logBox.textContent.slice(-MAX_LOG_CHARS);
    }
    if (follow) {
      logBox.scrollTop = logBox.scrollHeight;
    }
  }

  function el(name, attributes, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) {
      node.setAttribute(key, attributes[key]);
    });
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // The same look as topdown/charts.py's line_chart: one line per logged metric name.
  function drawChart() {
    var axis = AXES.find(function (name) {
      return points.some(function (p) { return typeof p[name] === "number"; });
    });
    var names = [];
    points.forEach(function (p) {
      Object.keys(p).forEach(function (key) {
        if (key !== "t" && AXES.indexOf(key) === -1 && names.indexOf(key) === -1) {
          names.push(key);
        }
      });
    });
    names = names.slice(0, 6);
    var series = names.map(function (name) {
      var list = [];
      points.forEach(function (p, index) {
        var x = axis ? p[axis] : index + 1;
        if (typeof p[name] === "number" && typeof x === "number") {
          list.push([x, p[name]]);
        }
      });
      return { name: name, points: list };
    }).filter(function (s) { return s.points.length > 0; });
    if (!series.length) {
      return;
    }
    var W = 640, H = 260, L = 56, R = 16, T = 16, B = 40;
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
    });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    var pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    function sx(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
    function sy(v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); }

    var svg = el("svg", {
      "class": "chart", viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
      "aria-label": "Training curve so far: " + series.map(function (s) {
        return s.name + " " + s.points[s.points.length - 1][1].toPrecision(4);
      }).join(", ")
    });
    svg.appendChild(el("line", { "class": "chart-axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    svg.appendChild(el("line", { "class": "chart-axis", x1: L, y1: T, x2: L, y2: H - B }));
    [y0 + pad, (y0 + y1) / 2, y1 - pad].forEach(function (v) {
      svg.appendChild(el("text", { "class": "chart-tick", x: L - 6, y: sy(v) + 4, "text-anchor": "end" },
        Number(v.toPrecision(3)).toString()));
    });
    [x0, x1].forEach(function (v) {
      svg.appendChild(el("text", { "class": "chart-tick", x: sx(v), y: H - B + 16, "text-anchor": "middle" },
        Number(v.toPrecision(4)).toString()));
    });
    svg.appendChild(el("text", { "class": "chart-label", x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" },
      axis || "logged point"));
    series.forEach(function (s, index) {
      var css = "chart-series-" + (index % 6);
      svg.appendChild(el("polyline", {
        "class": "chart-line " + css,
        points: s.points.map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join(" ")
      }));
      var last = s.points[s.points.length - 1];
      svg.appendChild(el("circle", { "class": "chart-dot " + css, cx: sx(last[0]), cy: sy(last[1]), r: 3 }));
      svg.appendChild(el("rect", { "class": "chart-swatch " + css, x: L + 8, y: T + 4 + index * 16, width: 10, height: 10 }));
      svg.appendChild(el("text", { "class": "chart-legend", x: L + 22, y: T + 13 + index * 16 },
        s.name + ": " + Number(last[1].toPrecision(4))));
    });
    chartBody.replaceChildren(svg);
    chartFigure.hidden = false;
  }

  function show(data) {
    if (data.status !== lastStatus) {
      lastStatus = data.status;
      document.getElementById("run-status").textContent = data.status_label;
    }
    if (data.status === "queued") {
      state.textContent = data.queue_position
        ? "Waiting for a worker: number " + data.queue_position + " in the queue."
        : "Waiting for a worker…";
      if (data.live_workers === 0) {
        state.textContent += " No worker is running right now; it will start when one does.";
      }
    } else if (data.status === "running") {
      state.textContent = "Running…";
    }
    // The queue's figures only mean something while it waits.
    [field("queue_position"), field("estimated_wait")].forEach(function (dd) {
      dd.parentNode.hidden = data.status !== "queued";
    });
    field("queue_position").textContent = data.queue_position || "–";
    field("estimated_wait").textContent = data.estimated_wait_s === null ? "–" : "about " + duration(data.estimated_wait_s);
    field("elapsed").textContent = duration(data.elapsed_s);
    if (data.log_length < data.log_from) {
      // Queued again after a platform failure: the log starts over.
      logBox.textContent = "";
      logLength = 0;
    } else {
      if (data.log) {
        appendLog(data.log);
      }
      logLength = data.log_from + data.log.length;
    }
    if (data.metrics_length < data.metrics_from) {
      points = []; // ...and so does the curve
      metricsLength = 0;
    } else {
      if (data.metrics.length) {
        points = points.concat(data.metrics);
        drawChart();
      }
      metricsLength = data.metrics_from + data.metrics.length;
    }
  }

  function poll() {
    var url = statusUrl + "?log_from=" + logLength + "&metrics_from=" + metricsLength;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        show(data);
        if (data.finished) {
          state.textContent = "Finished: loading the result…";
          window.location.reload();
          return;
        }
        // More to fetch (a long log or many points at once): ask again right away.
        var behind = data.log_length > logLength || data.metrics_length > metricsLength;
        window.setTimeout(poll, behind ? 0 : POLL_MS);
      })
      .catch(function () {
        failures += 1;
        state.textContent = "Lost contact with the server; trying again…";
        window.setTimeout(poll, Math.min(POLL_MS * Math.pow(2, failures), 30000));
      });
  }

  // The server rendered the log so far: start from its end.
  logBox.scrollTop = logBox.scrollHeight;
  poll();
})();
