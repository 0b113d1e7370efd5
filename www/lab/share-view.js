// The lab page's sharing: "Copy link" copies the address of the current configuration, and the share dialog
// builds a classroom link that hides some controls (url-state.js HIDE_NAMES).
//
// Test hooks (read by tests/e2e/lab-share.test.mjs): #share-url, #share-dialog[open], #share-status,
// #copy-status ("Copied.").
import { HIDE_LABELS, HIDE_NAMES } from "./url-state.js";
import { $ } from "./dom.js";

/** Copies `text` (the Clipboard API where allowed; else the text stays selected in `input` for Ctrl+C). */
async function copy(text, status, input = null) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    input?.select();
    status.textContent = input ? "Copying is not allowed here: the link is selected, press Ctrl+C (⌘C)." : `Copy this link: ${text}`;
  }
}

/**
 * Wires the share dialog and the Copy link button.
 * @param {(hide: string[]) => string} addressOf the page's address with the controls `hide` hidden
 * @param {string[]} hidden the controls the current address hides
 */
export function wireSharing(addressOf, hidden) {
  const box = $("share-hide");
  for (const name of HIDE_NAMES) {
    const input = Object.assign(document.createElement("input"), { type: "checkbox", value: name, id: `share-hide-${name}` });
    const label = Object.assign(document.createElement("label"), { htmlFor: input.id });
    label.append(input, ` ${name}: ${HIDE_LABELS[name]}`);
    box.append(label);
  }
  const chosen = () => [...box.querySelectorAll("input:checked")].map((i) => i.value);
  const refresh = () => {
    $("share-url").value = addressOf(chosen());
    $("share-status").textContent = "";
  };
  box.addEventListener("change", refresh);
  $("share-open").addEventListener("click", () => {
    for (const input of box.querySelectorAll("input")) input.checked = hidden.includes(input.value);
    refresh();
    $("share-dialog").showModal(); // a modal <dialog>: focus moves in, Escape closes it, focus returns
  });
  $("share-close").addEventListener("click", () => $("share-dialog").close());
  $("share-copy").addEventListener("click", () => copy($("share-url").value, $("share-status"), $("share-url")));
  $("copy-link").addEventListener("click", () => copy(addressOf(), $("copy-status")));
}
