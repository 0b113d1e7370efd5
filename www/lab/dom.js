// The lab page's two DOM helpers that every view of it (page.js, run-view.js, report-view.js,
// recovery-view.js, share-view.js) uses: an element by id, and the error line (#lab-error).

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** Shows `text` in the error line (or empties it); `append` keeps what it already says. */
export function showError(text, { append = false } = {}) {
  const el = $("lab-error");
  const before = append && !el.hidden ? el.textContent : "";
  el.hidden = !text && !before;
  el.textContent = text ? `${before ? `${before} · ` : "Something went wrong: "}${text}` : before;
}
