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

  // Code boxes: Tab indents (Shift+Tab dedents) instead of leaving the box. Esc hands Tab back
  // to the keyboard's usual job until the box is left, so nobody is trapped in it.
  var INDENT = "    ";
  var released = new WeakSet();

  function lineStart(text, index) {
    return text.lastIndexOf("\n", index - 1) + 1;
  }

  function replaceRange(box, start, end, text, selectStart, selectEnd) {
    box.setRangeText(text, start, end);
    box.setSelectionRange(selectStart, selectEnd);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function indent(box, outdent) {
    var value = box.value;
    var start = box.selectionStart;
    var end = box.selectionEnd;
    var multiLine = value.slice(start, end).indexOf("\n") !== -1;
    if (!outdent && !multiLine) {
      replaceRange(box, start, end, INDENT, start + INDENT.length, start + INDENT.length);
      return;
    }
    var from = lineStart(value, start);
    var lines = value.slice(from, end).split("\n");
    var removedFirst = 0;
    var changed = lines.map(function (line, i) {
      if (!outdent) {
        return INDENT + line;
      }
      var spaces = line.match(/^ {0,4}/)[0].length;
      if (i === 0) {
        removedFirst = spaces;
      }
      return line.slice(spaces);
    });
    var text = changed.join("\n");
    var firstShift = outdent ? -Math.min(removedFirst, start - from) : INDENT.length;
    replaceRange(box, from, end, text, Math.max(from, start + firstShift), from + text.length);
  }

  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.hasAttribute("data-code-input")) {
      return;
    }
    if (event.key === "Escape") {
      released.add(box);
      return;
    }
    if (event.key !== "Tab" || event.ctrlKey || event.altKey || event.metaKey) {
      return;
    }
    if (released.has(box)) {
      return;
    }
    event.preventDefault();
    indent(box, event.shiftKey);
  });

  document.addEventListener("focusout", function (event) {
    if (event.target instanceof HTMLTextAreaElement) {
      released.delete(event.target);
    }
  });
})();
