/*
 * Typeset the maths the markdown renderer leaves for the browser: every span.math.inline and
 * div.math.block holds LaTeX as its text. Loaded with defer after katex.min.js.
 */
(function () {
  "use strict";

  function renderMath(root) {
    if (typeof window.katex === "undefined") {
      return; // KaTeX failed to load: the LaTeX source stays readable as text.
    }
    var elements = (root || document).querySelectorAll("span.math.inline, div.math.block");
    elements.forEach(function (el) {
      if (el.dataset.mathRendered) {
        return;
      }
      window.katex.render(el.textContent, el, {
        displayMode: el.classList.contains("block"),
        throwOnError: false,
      });
      el.dataset.mathRendered = "true";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      renderMath(document);
    });
  } else {
    renderMath(document);
  }

  // Content swapped in by htmx gets typeset too.
  document.addEventListener("htmx:load", function (event) {
    renderMath(event.target);
  });

  window.topdownRenderMath = renderMath;
})();
