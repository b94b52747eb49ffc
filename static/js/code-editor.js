/* The assignment page's code editor: CodeMirror on the [data-code-editor] textarea, a draft kept
 * in this browser's localStorage, and "reset to starter code". Without JavaScript (or if the
 * bundle fails to load) the plain textarea posts the same form. */
(function () {
  "use strict";

  // The response's CSP nonce (topdown/csp.py), for the <style> element CodeMirror adds.
  var script = document.currentScript;
  var nonce = script ? script.getAttribute("data-csp-nonce") : null;

  function storage() {
    try {
      var probe = "topdown:probe";
      window.localStorage.setItem(probe, probe);
      window.localStorage.removeItem(probe);
      return window.localStorage;
    } catch (error) {
      return null; // disabled or full: the editor still works, without drafts
    }
  }

  function start() {
    var textarea = document.querySelector("textarea[data-code-editor]");
    if (!textarea || !window.TopdownEditor) {
      return;
    }
    var form = textarea.form;
    var key = form.getAttribute("data-draft-key");
    var starterNode = document.getElementById("starter-code");
    var starter = starterNode ? JSON.parse(starterNode.textContent) : "";
    var tools = form.querySelector("[data-editor-tools]");
    var status = form.querySelector("[data-editor-status]");
    var store = key ? storage() : null;
    // After a refused submission the server sends back what was posted: that wins over a draft.
    var posted = form.hasAttribute("data-posted");

    function say(text) {
      if (status) {
        status.textContent = text;
      }
    }

    if (store && !posted) {
      var draft = store.getItem(key);
      if (draft !== null && draft !== textarea.value) {
        textarea.value = draft;
        say("Your draft from this browser was restored.");
      }
    }

    var timer = null;
    var editor = window.TopdownEditor.attach(textarea, {
      label: textarea.getAttribute("data-code-label") || "Your code (Python)",
      nonce: nonce || undefined,
      onChange: function (text) {
        if (!store) {
          return;
        }
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          try {
            store.setItem(key, text);
            say("Draft saved in this browser.");
          } catch (error) {
            say("The draft could not be saved in this browser.");
          }
        }, 300);
      },
    });
    if (store && posted) {
      store.setItem(key, textarea.value);
    }

    if (tools) {
      tools.hidden = false;
      tools.querySelector("[data-editor-reset]").addEventListener("click", function () {
        if (editor.getValue() !== starter &&
            !window.confirm("Replace your code with the starter code? Your draft will be lost.")) {
          return;
        }
        editor.setValue(starter);
        window.clearTimeout(timer);
        if (store) {
          store.removeItem(key);
        }
        say("Back to the starter code.");
        editor.focus();
      });
    }

    // Make sure the last keystrokes are in the textarea and the draft before the page goes.
    form.addEventListener("submit", function () {
      textarea.value = editor.getValue();
      window.clearTimeout(timer);
      if (store) {
        store.setItem(key, textarea.value);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
