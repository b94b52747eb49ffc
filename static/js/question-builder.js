/* The question editor (templates/courses/authoring/question_form.html).
 *
 * - "Add a choice" / "Add a criterion": copies the formset's empty row from its <template> and
 *   bumps the management form's TOTAL_FORMS. Without JavaScript the blank rows the server sends
 *   serve the same purpose, and "Remove" checkboxes work either way.
 * - Code fields ([data-code-field]) become CodeMirror editors when the bundle is loaded; the
 *   textarea stays the form's field, so the form posts the same without JavaScript.
 */
(function () {
  "use strict";

  // The response's CSP nonce (topdown/csp.py), for the <style> element CodeMirror adds.
  var script = document.currentScript;
  var nonce = script ? script.getAttribute("data-csp-nonce") : null;

  function renumber(list) {
    list.querySelectorAll("[data-row-number]").forEach(function (node, index) {
      node.textContent = String(index + 1);
    });
  }

  function setUpRows(button) {
    var prefix = button.getAttribute("data-add-row");
    var list = document.querySelector('[data-rows="' + prefix + '"]');
    var template = document.querySelector('template[data-row-template="' + prefix + '"]');
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var max = document.getElementById("id_" + prefix + "-MAX_NUM_FORMS");
    if (!list || !template || !total) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      if (max && index >= parseInt(max.value, 10)) {
        return;
      }
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      list.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      renumber(list);
      var added = list.lastElementChild;
      var input = added && added.querySelector("textarea, input[type=text]");
      if (input) {
        input.focus();
      }
    });
  }

  function setUpCode(textarea) {
    if (!window.TopdownEditor) {
      return;
    }
    var editor = window.TopdownEditor.attach(textarea, {
      label: textarea.getAttribute("data-code-field") + " (Python)",
      nonce: nonce || undefined, // CodeMirror's <style> element needs the page's CSP nonce
    });
    textarea.form.addEventListener("submit", function () {
      textarea.value = editor.getValue();
    });
  }

  function start() {
    document.querySelectorAll("[data-add-row]").forEach(setUpRows);
    document.querySelectorAll("textarea[data-code-field]").forEach(setUpCode);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
