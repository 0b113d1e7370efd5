// Text measurement for the report's SVG figures inside a worker.
//
// The figures are drawn by plotters (Rust). On wasm32 its only font backend (plotters 0.3.7,
// src/style/font/web.rs) sizes every label by appending a <span> to `window.document.body` and reading its
// offsetWidth / offsetHeight. A worker has no window and no DOM, so `Experiment.report()` would panic there
// ("called `Option::unwrap()` on a `None` value" in web.rs) and poison the wasm instance.
//
// `withTextMeasure(fn)` runs `fn` with a minimal stand-in for exactly what that code touches — `Window`
// (instanceof), `document.body.append`, `document.createElement("span")`, `textContent`, `setAttribute("style")`,
// `HTMLElement` (instanceof), `offsetWidth`, `offsetHeight`, `remove()` — measuring the text with an
// OffscreenCanvas 2-D context in the same font. The stand-in exists only while `fn` runs, so nothing else
// (wgpu looks for `Window` to find `navigator.gpu`) ever sees it.

const canvas = typeof OffscreenCanvas === "undefined" ? null : new OffscreenCanvas(1, 1);
const ctx = canvas?.getContext("2d") ?? null;
/** The line box of `line-height: normal` is about 1.15 × the font size for the usual sans-serif fonts. */
const LINE_HEIGHT = 1.15;

class MeasuredSpan {
  constructor() {
    this.textContent = "";
    this.style = "";
  }

  setAttribute(name, value) {
    if (name === "style") this.style = String(value);
  }

  /** { family, style, size } from the inline style plotters writes. */
  font() {
    const get = (key) => this.style.match(new RegExp(`${key}\\s*:\\s*([^;]+)`))?.[1]?.trim();
    return { family: get("font-family") ?? "sans-serif", style: get("font-style") ?? "normal", size: parseFloat(get("font-size")) || 16 };
  }

  get offsetWidth() {
    const { family, style, size } = this.font();
    if (!ctx) return Math.round(0.55 * size * this.textContent.length); // no canvas: an average glyph width
    ctx.font = `${style} ${size}px ${family}`;
    return Math.round(ctx.measureText(this.textContent).width);
  }

  get offsetHeight() {
    return Math.round(LINE_HEIGHT * this.font().size);
  }

  remove() {}
}

const body = { append() {} };
const fakeDocument = { body, createElement: () => new MeasuredSpan() };
let active = false;

/** Runs `fn()` (synchronous: e.g. `() => experiment.report()`) where plotters can measure text; returns its value. */
export function withTextMeasure(fn) {
  if (typeof document !== "undefined") return fn(); // a page: the real DOM is there
  const g = globalThis;
  const had = { Window: "Window" in g, HTMLElement: "HTMLElement" in g };
  if (!had.Window) g.Window = class { static [Symbol.hasInstance](x) { return active && x === g; } };
  if (!had.HTMLElement) g.HTMLElement = class { static [Symbol.hasInstance](x) { return x instanceof MeasuredSpan; } };
  g.document = fakeDocument;
  active = true;
  try {
    return fn();
  } finally {
    active = false;
    delete g.document;
    if (!had.Window) delete g.Window;
    if (!had.HTMLElement) delete g.HTMLElement;
  }
}
