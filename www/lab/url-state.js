// The lab page's address, parsed and written without touching the DOM, so node can test it
// (tests/e2e/url-state.test.mjs fuzzes it). One address is one run: the preset, the scale, the engine choice,
// the merge patch the configuration panel builds (seeds included) and the controls a classroom link hides.
// Parsing never throws: it returns what it could read plus one error per parameter it could not, each naming
// the parameter and what is allowed; the page shows those errors and goes on with the rest. Whether a patch
// makes a valid experiment is the engine's call (the worker plans it), not this module's: here a patch only
// has to be a JSON object of bounded size and depth.

/** Controls `?hide=` can hide (comma-separated), in the order the address lists them. */
export const HIDE_NAMES = Object.freeze(["preset", "scale", "config", "export", "import", "share", "about"]);

/** What each `?hide=` name hides (the page's header comment and the share dialog show these). */
export const HIDE_LABELS = Object.freeze({
  preset: "the preset menu",
  scale: "the scale menu",
  config: "the configuration panel",
  export: "the export buttons (results, claims, figures, parameters)",
  import: "loading a saved results file",
  share: "the share and copy-link buttons",
  about: "the preset's description and claim",
});

/** The parameters the page reads, in the order `serialise` writes them. */
export const PARAMS = Object.freeze(["preset", "scale", "cpu", "patch", "hide"]);

/** Longest `patch` accepted, in characters (an address that long is already hard to share). */
export const MAX_PATCH_CHARS = 20_000;
/** Deepest nesting of objects and arrays accepted in `patch` (configs nest four levels). */
export const MAX_PATCH_DEPTH = 16;
/** Longest preset id (the engine accepts ids of 1 to 64 letters, digits, '-' and '_'). */
const ID = /^[A-Za-z0-9_-]{1,64}$/;

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Depth of nested objects and arrays, stopping once it exceeds `limit` (no deep recursion on hostile input). */
function depthOver(value, limit) {
  let level = [value];
  for (let depth = 0; level.length; depth += 1) {
    if (depth > limit) return true;
    const next = [];
    for (const v of level) {
      if (v !== null && typeof v === "object") next.push(...Object.values(v));
    }
    level = next;
  }
  return false;
}

/** A short quote of a value for an error message. */
function quote(text) {
  const s = String(text);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/**
 * The default state: nothing chosen (the page picks the first preset and a scale by engine), no patch.
 * @returns {{preset: string|null, scale: string|null, cpu: boolean, patch: object|null, hide: string[]}}
 */
export function emptyState() {
  return { preset: null, scale: null, cpu: false, patch: null, hide: [] };
}

/**
 * Reads an address's query (`location.search`, with or without the leading `?`). Never throws.
 * `options.scales` (the scale names) and `options.presets` (ids, or null to skip the check) restrict the values.
 * Returns `{ state, errors }`; each error is `{ param, message }`, the message naming the parameter and what is
 * allowed. A parameter in error keeps its default in `state`.
 */
export function parse(search, { scales = ["quick", "default"], presets = null, extraPresets = ["free-play"] } = {}) {
  const state = emptyState();
  const errors = [];
  const fail = (param, message) => errors.push({ param, message: `${param}: ${message}` });
  let params;
  try {
    params = new URLSearchParams(typeof search === "string" ? search : "");
  } catch (e) {
    fail("address", `cannot be read (${e?.message ?? e})`);
    return { state, errors };
  }
  const seen = new Map();
  for (const [key, value] of params) {
    if (!PARAMS.includes(key)) {
      if (!seen.has(key)) fail(quote(key), `is not a parameter of the lab; it knows ${PARAMS.join(", ")}`);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      continue;
    }
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (seen.get(key) > 1) {
      if (seen.get(key) === 2) fail(key, "is given more than once; the first one is used");
      continue;
    }
    switch (key) {
      case "preset":
        if (!ID.test(value)) fail("preset", `${quote(value)} is not a preset id (1 to 64 letters, digits, '-' or '_')`);
        else if (presets && !presets.includes(value) && !extraPresets.includes(value)) {
          fail("preset", `${quote(value)} does not exist; the presets are ${[...presets, ...extraPresets].join(", ")}`);
        } else state.preset = value;
        break;
      case "scale":
        if (scales.includes(value)) state.scale = value;
        else fail("scale", `${quote(value)} is not a scale; the scales are ${scales.join(", ")}`);
        break;
      case "cpu":
        if (value === "" || value === "1" || value === "true") state.cpu = true;
        else if (value === "0" || value === "false") state.cpu = false;
        else fail("cpu", `${quote(value)} is not allowed: give ?cpu (or cpu=1, cpu=0)`);
        break;
      case "patch":
        state.patch = readPatch(value, fail);
        break;
      case "hide": {
        const names = value.split(",").map((s) => s.trim()).filter(Boolean);
        const unknown = names.filter((n) => !HIDE_NAMES.includes(n));
        if (unknown.length) {
          fail("hide", `${unknown.slice(0, 5).map(quote).join(", ")}${unknown.length > 5 ? " …" : ""} ` +
            `cannot be hidden; the names are ${HIDE_NAMES.join(", ")}`);
        }
        state.hide = HIDE_NAMES.filter((n) => names.includes(n));
        break;
      }
      default:
        break;
    }
  }
  return { state, errors };
}

/** The `patch` parameter as a merge patch object, or null after reporting why not. */
function readPatch(text, fail) {
  if (text.length > MAX_PATCH_CHARS) {
    fail("patch", `is ${text.length} characters long; at most ${MAX_PATCH_CHARS} are accepted`);
    return null;
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    fail("patch", `the patch is not JSON (${e?.message ?? e}); give a JSON merge patch such as {"seeds":[1,2]}`);
    return null;
  }
  if (!isObject(value)) {
    fail("patch", `must be a JSON object (a merge patch on the preset, such as {"seeds":[1,2]}), got ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`);
    return null;
  }
  if (depthOver(value, MAX_PATCH_DEPTH)) {
    fail("patch", `nests deeper than ${MAX_PATCH_DEPTH} levels; an experiment's config nests four`);
    return null;
  }
  return value;
}

/** Percent-encodes a value, leaving the characters that read well in a query (`,` `:` `/` `@`) as they are. */
function encode(value) {
  return encodeURIComponent(value).replace(/%(2C|3A|2F|40)/g, (m) => decodeURIComponent(m));
}

/**
 * The query (with its `?`, or "" when empty) of a state: parameters in a fixed order, `cpu` as a bare flag,
 * the patch as compact JSON, `hide` in HIDE_NAMES order. `parse(serialise(s))` gives `s` back.
 */
export function serialise(state) {
  const parts = [];
  if (state.preset) parts.push(`preset=${encode(state.preset)}`);
  if (state.scale && state.preset !== "free-play") parts.push(`scale=${encode(state.scale)}`);
  if (state.cpu) parts.push("cpu");
  if (isObject(state.patch) && Object.keys(state.patch).length) parts.push(`patch=${encode(JSON.stringify(state.patch))}`);
  const hide = HIDE_NAMES.filter((n) => state.hide?.includes(n));
  if (hide.length) parts.push(`hide=${hide.join(",")}`);
  return parts.length ? `?${parts.join("&")}` : "";
}
