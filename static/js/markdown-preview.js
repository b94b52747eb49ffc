/*
 * Live markdown preview. A <textarea data-markdown-preview="ID"> is rendered by the server (the
 * same renderer and sanitiser as the published page) into the element with that id, 300 ms after
 * typing stops. The CSRF token comes from the form the textarea sits in.
 */
(function () {
  "use strict";

  var DELAY_MS = 300;

  function csrfToken(textarea) {
    var form = textarea.form;
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function attach(textarea) {
    var target = document.getElementById(textarea.dataset.markdownPreview);
    var url = textarea.dataset.markdownPreviewUrl || "/markdown/preview/";
    if (!target) {
      return;
    }
    var timer = null;
    var latest = 0;

    function render() {
      var request = ++latest;
      var body = new FormData();
      body.append("text", textarea.value);
      target.setAttribute("aria-busy", "true");
      fetch(url, {
        method: "POST",
        body: body,
        headers: { "X-CSRFToken": csrfToken(textarea) },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (result) {
          if (request !== latest) {
            return; // an older answer arriving after a newer one
          }
          if (result.ok) {
            target.innerHTML = result.data.html; // sanitised by the server (nh3)
            target.classList.remove("preview-error");
            if (window.topdownRenderMath) {
              window.topdownRenderMath(target);
            }
          } else {
            target.textContent = result.data.error || "The preview failed.";
            target.classList.add("preview-error");
          }
        })
        .catch(function () {
          if (request === latest) {
            target.textContent = "The preview is unavailable (are you offline?).";
            target.classList.add("preview-error");
          }
        })
        .finally(function () {
          if (request === latest) {
            target.removeAttribute("aria-busy");
          }
        });
    }

    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, DELAY_MS);
    });
    render();
  }

  function init() {
    document.querySelectorAll("textarea[data-markdown-preview]").forEach(attach);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
