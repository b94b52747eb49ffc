// The one global the site's pages use: window.TopdownEditor.attach(textarea, options), where
// options are { label, onChange, nonce } (nonce: the response's CSP nonce, topdown/csp.py).
// Built into ../codemirror.bundle.js by build.sh; edit this file, not the bundle.
import { basicSetup } from "codemirror";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";

// Replaces a <textarea> with a Python editor that writes every change back into it, so the
// surrounding form posts the code as if the textarea had been typed in.
function attach(textarea, options) {
  const settings = options || {};
  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        basicSetup,
        // Tab indents; Esc then Tab moves focus on, as CodeMirror documents for keyboard users.
        keymap.of([indentWithTab]),
        python(),
        EditorView.contentAttributes.of({ "aria-label": settings.label || "Code editor" }),
        // The page's Content-Security-Policy allows our <style> element by this nonce.
        settings.nonce ? EditorView.cspNonce.of(settings.nonce) : [],
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) {
            return;
          }
          textarea.value = update.state.doc.toString();
          if (settings.onChange) {
            settings.onChange(textarea.value);
          }
        }),
      ],
    }),
  });
  textarea.required = false; // a hidden required field would block the form's submission
  textarea.hidden = true;
  textarea.insertAdjacentElement("afterend", view.dom);
  return {
    view,
    getValue() {
      return view.state.doc.toString();
    },
    setValue(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    focus() {
      view.focus();
    },
  };
}

window.TopdownEditor = { attach };
