// The one style of sgd-lab's figures: the series palette, the colour maps, the greys, the font and its sizes, the
// stroke widths and marker sizes. Two readers share this file, so a colour is written once:
//   - the Rust figures (the CLI's and the report's SVGs: src/analysis/plot.rs, src/experiments/figures/), through
//     src/analysis/figure_style.rs, which compiles this file in (include_str!) and parses the object below as JSON;
//   - the page's live figures (www/lab/figures.js, and so the <sgd-lab> element), which import it as a module.
// Why a JavaScript module and not a .json file: a plain module import works in every browser that runs the page
// (JSON modules do not yet), needs no fetch and no top-level await, loads cross-origin for <sgd-lab> like any
// other module (import.meta.url), and is one of the app-shell files the service worker keeps offline.
//
// Keep FIGURE_STYLE's value strict JSON (double-quoted keys, no comments, no trailing commas): Rust reads it
// with serde_json from the `{` after `FIGURE_STYLE =` to its matching `}`. Colours are "#rrggbb".
//   series      one colour per series, in order, cycled (matplotlib's tab10 without its grey and olive)
//   reference   reference lines, their labels and notes; missing: cells without a finite value
//   trajectory  a path drawn over a landscape; centre: the marked centre θ* of a landscape
//   colour_map  viridis, 9 evenly spaced stops, linearly interpolated: heatmap fills (perceptually even,
//               readable in grey-scale print)
//   line_ramp   blue → red, evenly spaced stops: lines coloured by a value (dark at both ends, so every line
//               reads on white, which viridis' yellow end does not)
//   font        the family, and the size in px of each role of text (value: numbers printed in heatmap cells)
//   stroke      line widths in px (line: data lines; thin: reference lines, error bars, crosses)
//   marker      marker radii in px (scatter: scatter points; line: the points on a line)
export const FIGURE_STYLE = deepFreeze({
  "series": ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"],
  "reference": "#787878",
  "missing": "#dedede",
  "trajectory": "#ff7800",
  "centre": "#ff0000",
  "colour_map": ["#440154", "#472c7a", "#3b518b", "#2c718e", "#21908d", "#27ad81", "#5cc863", "#aadc32", "#fde725"],
  "line_ramp": ["#313695", "#4575b4", "#74add1", "#f46d43", "#d73027", "#a50026"],
  "font": { "family": "sans-serif", "title": 18, "axis": 14, "legend": 13, "note": 13, "tick": 12, "label": 12, "value": 11 },
  "stroke": { "line": 2, "thin": 1 },
  "marker": { "scatter": 4, "line": 2 }
});

function deepFreeze(o) {
  for (const v of Object.values(o)) if (v && typeof v === "object") deepFreeze(v);
  return Object.freeze(o);
}

/** The colour of series `i` (0, 1, …): the palette, cycled. */
export function seriesColour(i) {
  const s = FIGURE_STYLE.series;
  return s[((i % s.length) + s.length) % s.length];
}

/** `[r, g, b]` of "#rrggbb". */
const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));

/** A colour at t ∈ [0, 1] (clamped) between evenly spaced stops, linearly interpolated: "rgb(r,g,b)". */
function interpolate(stops, t) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [rgb(stops[i]), rgb(stops[i + 1])];
  return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",")})`;
}

/** A line's colour on the blue (t = 0) → red (t = 1) ramp. */
export const rampColour = (t) => interpolate(FIGURE_STYLE.line_ramp, t);
