/*
 * Keyboard shortcuts on the review page: 1-9 tick or untick rubric items, Ctrl+Enter (Cmd+Enter
 * on a Mac) saves and opens the next answer. The running score follows the ticks. Without
 * JavaScript the checkboxes and the save button do the same; the server computes the score.
 */
(function () {
  "use strict";

  function isTyping(target) {
    if (!target || !target.tagName) {
      return false;
    }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) {
      return true;
    }
    return tag === "input" && target.type !== "checkbox" && target.type !== "radio";
  }

  function updateScore(form) {
    var output = form.querySelector("[data-rubric-score]");
    if (!output) {
      return;
    }
    // Hundredths as integers, so 0.1 + 0.2 shows 0.3.
    var total = 0;
    form.querySelectorAll("input[data-points]:checked").forEach(function (box) {
      total += Math.round(parseFloat(box.getAttribute("data-points")) * 100);
    });
    var max = Math.round(parseFloat(output.getAttribute("data-max")) * 100);
    output.textContent = String(Math.min(total, max) / 100);
  }

  function init() {
    var form = document.querySelector("[data-review-form]");
    if (!form) {
      return;
    }
    var hint = form.querySelector("[data-review-keys-hint]");
    if (hint) {
      hint.hidden = false;
    }
    form.addEventListener("change", function () {
      updateScore(form);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) {
        return;
      }
      if (!/^[1-9]$/.test(event.key)) {
        return;
      }
      var box = form.querySelector('input[data-rubric-key="' + event.key + '"]');
      if (box) {
        event.preventDefault();
        box.checked = !box.checked;
        updateScore(form);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
