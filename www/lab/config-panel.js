// The lab's configuration panel: editable controls for what a student or teacher changes most — data set,
// training-set size and label noise, architecture, learning rates and batch sizes, momentum, weight decay,
// the cyclic schedule (E4), the budget and the seeds. It shows the preset's values at the chosen scale with the
// address's patch on top, and turns every edit into one JSON merge patch on the preset (RFC 7396; a value equal
// to the preset's is left out of it). It never checks ranges itself: the engine validates the patched config
// (the worker plans it) and `showEngineError` marks the field its error names. Only text that is not a number
// at all (or not a whole number where the config needs one) is refused here, with the field named — nothing is
// ever clamped or rounded.
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** RFC 7396: `target` with `patch` applied (objects merge key by key, `null` deletes, the rest replaces). */
export function applyPatch(target, patch) {
  if (!isObject(patch)) return patch;
  const out = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyPatch(out[k], v);
  }
  return out;
}

const get = (obj, path) => path.reduce((o, k) => (o == null ? undefined : o[k]), obj);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** `patch` with `path` set to `value` (a copy; parents created). */
function setPath(patch, path, value) {
  const out = { ...patch };
  let o = out;
  for (const k of path.slice(0, -1)) {
    o[k] = isObject(o[k]) ? { ...o[k] } : {};
    o = o[k];
  }
  o[path.at(-1)] = value;
  return out;
}

/** `patch` without `path` (a copy; parents left empty are removed). */
function deletePath(patch, path) {
  if (!isObject(patch) || !(path[0] in patch)) return patch;
  const out = { ...patch };
  if (path.length === 1) {
    delete out[path[0]];
  } else {
    const inner = deletePath(out[path[0]], path.slice(1));
    if (isObject(inner) && !Object.keys(inner).length) delete out[path[0]];
    else out[path[0]] = inner;
  }
  return out;
}

/** The fields the panel shows for a config, in groups; only those the config has (kinds differ). */
function fieldsOf(config) {
  const groups = [];
  const ex = config.experiment ?? {};
  const data = [];
  if (config.dataset) {
    data.push({ path: ["dataset", "name"], label: "Data set", type: "select", options: ["fashion-mnist", "mnist"] });
    data.push({ path: ["dataset", "train_size"], label: "Training examples", type: "int" });
    data.push({ path: ["dataset", "validation_size"], label: "Validation examples", type: "int" });
    data.push({ path: ["dataset", "random_label_fraction"], label: "Random-label fraction", type: "float", default: 0 });
    // The data protocol (docs/data.md): stratified random subsets or the first N in file order; validation
    // held out of the training file or taken from the official test split.
    data.push({ path: ["dataset", "subset"], label: "Training examples chosen", type: "select", options: ["stratified", "first"], default: "stratified" });
    data.push({ path: ["dataset", "validation_from"], label: "Validation examples from", type: "select", options: ["train_file", "test_file"], default: "train_file" });
  } else if (config.data) {
    data.push({ path: ["data", "n"], label: `Points (${config.data.kind ?? "synthetic"})`, type: "int" });
  }
  if ("train_sizes" in ex) data.push({ path: ["experiment", "train_sizes"], label: "Training-set sizes N", type: "ints" });
  if ("random_label_fractions" in ex) data.push({ path: ["experiment", "random_label_fractions"], label: "Random-label fractions", type: "floats" });
  groups.push(["Data", data]);
  groups.push(["Architecture", [
    { path: ["model", "hidden"], label: "Hidden widths", type: "ints", empty: true },
    { path: ["model", "activation"], label: "Activation", type: "select", options: ["relu", "tanh", "linear"] },
  ]]);
  const train = [];
  if ("lrs" in ex) train.push({ path: ["experiment", "lrs"], label: "Learning rates η", type: "floats" });
  if ("lr" in ex) train.push({ path: ["experiment", "lr"], label: "Learning rate η", type: "float" });
  if ("batch_sizes" in ex) train.push({ path: ["experiment", "batch_sizes"], label: "Batch sizes B", type: "ints" });
  if ("batch_size" in ex) train.push({ path: ["experiment", "batch_size"], label: "Batch size B", type: "int" });
  if ("betas" in ex) train.push({ path: ["experiment", "betas"], label: "Multipliers β of η and B", type: "floats" });
  if ("momenta" in ex) train.push({ path: ["experiment", "momenta"], label: "Momenta", type: "floats" });
  else train.push({ path: ["momentum"], label: "Momentum", type: "float", default: 0 });
  train.push({ path: ["weight_decay"], label: "Weight decay", type: "float", default: 0 });
  groups.push(["Training", train]);
  if (ex.kind === "schedules") {
    groups.push(["Schedule (cyclic η against cyclic B)", [
      { path: ["experiment", "factors"], label: "Cycle factors", type: "floats" },
      { path: ["experiment", "stage_epochs"], label: "Stage length (epochs)", type: "float" },
    ]]);
  } else {
    groups.push(["Schedule", [{ note: "Constant η and B in this preset (cyclic learning-rate and batch-size schedules: E4)." }]]);
  }
  groups.push(["Budget and seeds", [
    { path: ["budget"], label: "Budget", type: "budget" },
    { path: ["seeds"], label: "Seeds", type: "ints" },
  ]]);
  return groups;
}

const id = (path) => `cfg-${path.join("-")}`;
const show = (v) => (Array.isArray(v) ? v.join(", ") : v == null ? "" : String(v));

/** Reads one field's text as the config needs it, or throws naming the field. */
function read(field, text) {
  const name = field.path.join(".");
  const number = (t) => {
    const s = t.trim();
    const v = Number(s);
    if (!s || !Number.isFinite(v)) throw new Error(`${name}: "${t}" is not a number`);
    if (field.type.startsWith("int") && !Number.isInteger(v)) throw new Error(`${name}: "${t}" is not a whole number`);
    if (field.type.startsWith("int") && v < 0) throw new Error(`${name}: ${t} is negative; give a whole number ≥ 0`);
    return v;
  };
  if (field.type === "select") return text;
  if (field.type === "int" || field.type === "float") {
    if (!text.trim() && field.path[0] === "dataset") return null; // absent: the data set's default (all, none)
    return number(text);
  }
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (!parts.length && !field.empty) throw new Error(`${name}: give at least one value, separated by commas`);
  return parts.map(number);
}

/** The configuration panel in `root` (a container), with its error line `errorEl`. */
export class ConfigPanel {
  constructor(root, errorEl, { onPatch }) {
    this.root = root;
    this.errorEl = errorEl;
    this.onPatch = onPatch;
    this.base = null;
    this.patch = {};
    this.local = new Map(); // field path → the error of text that is not a number
    root.addEventListener("change", (e) => this.#edited(e.target));
  }

  /** Shows `base` (the preset at its scale) with `patch` (the address's merge patch) applied. */
  show(base, patch) {
    this.base = base;
    this.patch = isObject(patch) ? patch : {};
    this.local.clear();
    const config = applyPatch(base, this.patch);
    const nodes = [];
    for (const [title, fields] of fieldsOf(config)) {
      if (!fields.length) continue;
      nodes.push(Object.assign(document.createElement("h4"), { textContent: title }));
      for (const f of fields) {
        if (f.note) {
          nodes.push(Object.assign(document.createElement("p"), { className: "note", textContent: f.note }));
          continue;
        }
        nodes.push(...this.#control(f, config));
      }
    }
    this.root.replaceChildren(...nodes);
    this.root.dataset.patch = JSON.stringify(this.patch);
    this.#mark();
    this.showEngineError("");
  }

  #control(f, config) {
    const label = Object.assign(document.createElement("label"), { htmlFor: id(f.path), textContent: f.label });
    const value = get(config, f.path) ?? f.default;
    if (f.type === "budget") {
      const kind = value && "steps" in value ? "steps" : "epochs";
      const wrap = document.createElement("span");
      wrap.className = "budget";
      wrap.dataset.path = "budget";
      const select = Object.assign(document.createElement("select"), { id: id(f.path) });
      select.dataset.path = "budget";
      select.dataset.part = "kind";
      select.append(...["epochs", "steps"].map((k) => Object.assign(document.createElement("option"), { value: k, textContent: k, selected: k === kind })));
      const input = Object.assign(document.createElement("input"), { type: "text", inputMode: "decimal", value: show(value?.[kind]) });
      input.dataset.path = "budget";
      input.dataset.part = "value";
      input.setAttribute("aria-label", "Budget: number of epochs or steps");
      select.setAttribute("aria-label", "Budget: epochs or steps");
      wrap.append(select, input);
      return [label, wrap];
    }
    let el;
    if (f.type === "select") {
      el = document.createElement("select");
      const options = f.options.includes(value) ? f.options : [value, ...f.options];
      el.append(...options.map((o) => Object.assign(document.createElement("option"), { value: o, textContent: o, selected: o === value })));
    } else {
      el = Object.assign(document.createElement("input"), { type: "text", value: show(value),
        inputMode: f.type.startsWith("int") ? "numeric" : "decimal", spellcheck: false });
      if (f.type.endsWith("s")) el.title = "Values separated by commas";
    }
    el.id = id(f.path);
    el.name = f.path.join(".");
    el.dataset.path = f.path.join(".");
    el.dataset.type = f.type;
    el.dataset.empty = f.empty ? "1" : "";
    if (f.default !== undefined) el.dataset.default = JSON.stringify(f.default);
    return [label, el];
  }

  /** One control changed: update the patch (or say why its text cannot be read) and tell the page. */
  #edited(target) {
    const path = target.dataset.path;
    if (!path || !this.base) return;
    const p = path.split(".");
    let value;
    try {
      if (path === "budget") {
        const kind = this.root.querySelector('[data-path="budget"][data-part="kind"]').value;
        const text = this.root.querySelector('[data-path="budget"][data-part="value"]').value;
        value = { [kind]: read({ path: [`budget.${kind}`], type: kind === "steps" ? "int" : "float" }, text) };
      } else {
        value = read({ path: p, type: target.dataset.type, empty: target.dataset.empty === "1" }, target.value);
      }
      this.local.delete(path);
    } catch (e) {
      this.local.set(path, e.message);
      this.#mark();
      this.#say();
      return;
    }
    const baseValue = get(this.base, p) ?? (target.dataset.default ? JSON.parse(target.dataset.default) : undefined);
    let patch = deletePath(this.patch, p);
    if (path === "budget") {
      // An externally tagged enum: switching epochs ↔ steps must delete the other key, not merge into it.
      const nulls = Object.fromEntries(Object.keys(baseValue ?? {}).filter((k) => !(k in value)).map((k) => [k, null]));
      if (!same(value, baseValue)) patch = setPath(patch, p, { ...nulls, ...value });
    } else if (!same(value, baseValue) && !(value === null && baseValue === undefined)) {
      patch = setPath(patch, p, value);
    }
    this.patch = patch;
    this.root.dataset.patch = JSON.stringify(patch);
    this.#mark();
    this.#say();
    this.onPatch(patch);
  }

  /** Marks the controls whose value differs from the preset's, and those in error. */
  #mark(engineField = "") {
    for (const el of this.root.querySelectorAll("[data-path]")) {
      if (el.tagName === "SPAN") continue;
      const path = el.dataset.path;
      el.classList.toggle("changed", get(this.patch, path.split(".")) !== undefined);
      const bad = this.local.has(path) || (engineField && (engineField === path || engineField.startsWith(`${path}[`) ||
        engineField.startsWith(`${path}.`)));
      if (bad) el.setAttribute("aria-invalid", "true");
      else el.removeAttribute("aria-invalid");
    }
  }

  #say(engine = this.engineError ?? "") {
    const text = [...this.local.values(), engine].filter(Boolean).join(" · ");
    this.errorEl.textContent = text;
    this.errorEl.dataset.error = text;
  }

  /**
   * Shows the engine's refusal of the patched config (or clears it with ""): the message as the engine wrote
   * it (it names the field and what is allowed), and the field marked when the panel shows it.
   */
  showEngineError(message) {
    this.engineError = message ? `The engine refuses this configuration: ${message}` : "";
    const field = /invalid config field `([^`]+)`/.exec(message ?? "")?.[1] ?? "";
    this.#mark(field);
    this.#say();
  }
}
