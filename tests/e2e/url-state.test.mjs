// The lab's address parser (www/lab/url-state.js), fuzzed in node without a browser: whatever the query —
// random strings, mutations of valid queries, percent-encoding junk, huge or deeply nested values — parse()
// never throws and returns a state plus errors that each name a parameter; and for generated valid states,
// serialise(parse(serialise(s))) equals serialise(s) and parse(serialise(s)) reports no error.
// Seeded (a small xorshift generator), so a failure names a case that can be replayed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HIDE_NAMES, MAX_PATCH_CHARS, PARAMS, emptyState, parse, serialise } from "../../www/lab/url-state.js";

const PRESETS = ["e1-ratio-sweep", "e1-ratio-sweep-deep", "e2-interpolation-ratios", "e3-interpolation-equal-ratio",
  "e4-schedules", "e5-memorization", "e6-breakdown", "edge-of-stability"];
const SCALES = ["quick", "default"];

function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (a) => a[int(a.length)];
  return { next, int, pick };
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_=&?%+,:{}[]\"' .#/\\\u00e9\u03b7\u{1F600}\ud800\u0000";

function randomString(r, max = 60) {
  let s = "";
  for (let i = r.int(max); i > 0; i -= 1) s += r.pick(ALPHABET);
  return s;
}

function randomJson(r, depth = 0) {
  const k = r.int(depth > 3 ? 4 : 7);
  if (k === 0) return r.int(1000) - 500;
  if (k === 1) return r.next() * 10 ** (r.int(40) - 20);
  if (k === 2) return randomString(r, 10);
  if (k === 3) return r.pick([true, false, null]);
  if (k === 4) return Array.from({ length: r.int(4) }, () => randomJson(r, depth + 1));
  const o = {};
  for (let i = r.int(4); i > 0; i -= 1) o[r.pick(["seeds", "momentum", "model", "hidden", "lrs", randomString(r, 6)])] = randomJson(r, depth + 1);
  return o;
}

function validState(r) {
  const s = emptyState();
  if (r.int(5)) s.preset = r.pick([...PRESETS, "free-play"]);
  if (r.int(3)) s.scale = r.pick(SCALES);
  if (s.preset === "free-play") s.scale = null; // free play has no scale: serialise leaves it out
  s.cpu = r.int(2) === 0;
  if (r.int(3)) {
    const patch = {};
    for (let i = 1 + r.int(3); i > 0; i -= 1) patch[r.pick(["seeds", "momentum", "model", "budget", "experiment", randomString(r, 8) || "x"])] = randomJson(r, 1);
    s.patch = patch;
  }
  s.hide = HIDE_NAMES.filter(() => r.int(3) === 0);
  return s;
}

function mutate(r, text) {
  const chars = [...text];
  for (let n = 1 + r.int(4); n > 0; n -= 1) {
    const i = r.int(chars.length + 1);
    const op = r.int(6);
    if (op === 0) chars.splice(i, 1);
    else if (op === 1) chars.splice(i, 0, r.pick(ALPHABET));
    else if (op === 2) chars.splice(i, 0, r.pick(["%", "%2", "%zz", "%E2%82", "%FF", "%00", "&", "=", "+", "%7B", "&&=="]));
    else if (op === 3) chars.splice(i, 0, `&${r.pick([...PARAMS, "bogus", "hide", "patch"])}=${randomString(r, 12)}`);
    else if (op === 4) chars.splice(i, r.int(10));
    else chars.splice(i, 0, ...chars.slice(r.int(chars.length), r.int(chars.length)));
  }
  return chars.join("");
}

function hugeValue(r) {
  const n = r.pick([MAX_PATCH_CHARS + 1, 100_000, 500_000]);
  return r.pick([
    () => `?patch=${"[".repeat(n)}${"]".repeat(n)}`,
    () => `?patch={"a":${"[".repeat(5000)}1${"]".repeat(5000)}}`,
    () => `?patch=${encodeURIComponent(JSON.stringify({ seeds: Array.from({ length: n / 4 }, (_, i) => i) }))}`,
    () => `?preset=${"e".repeat(n)}`,
    () => `?hide=${"preset,".repeat(n / 7)}`,
    () => `?scale=${"%".repeat(n)}`,
    () => `?${"&".repeat(n)}`,
    () => `?patch={"momentum":1e999999}`,
  ])();
}

/** The contract of one parse: no throw, a state of the right shape, errors naming a parameter. */
function check(input) {
  let out;
  try {
    out = parse(input, { presets: PRESETS });
  } catch (e) {
    assert.fail(`parse threw on ${JSON.stringify(String(input).slice(0, 200))}: ${e.stack}`);
  }
  const { state, errors } = out;
  assert.ok(state && Array.isArray(errors));
  assert.ok(state.preset === null || typeof state.preset === "string");
  assert.ok(state.scale === null || SCALES.includes(state.scale));
  assert.equal(typeof state.cpu, "boolean");
  assert.ok(state.patch === null || (typeof state.patch === "object" && !Array.isArray(state.patch)));
  assert.ok(state.hide.every((h) => HIDE_NAMES.includes(h)));
  for (const e of errors) {
    assert.equal(typeof e.param, "string");
    assert.ok(e.param.length > 0 && e.message.startsWith(`${e.param}: `), `an error names its parameter: ${JSON.stringify(e)}`);
  }
  // What was read can always be written and read back without errors.
  const again = serialise(state);
  assert.deepEqual(parse(again, { presets: PRESETS }).errors, [], `serialise(state) of ${JSON.stringify(String(input).slice(0, 100))}`);
  return out;
}

test("parse never throws and names the parameter of every error, over 100,000 generated addresses", (t) => {
  const r = rng(20171113);
  const seeds = [serialise(validState(r)), "?preset=e4-schedules&scale=quick&cpu&patch=%7B%22seeds%22%3A%5B1%2C2%5D%7D&hide=preset,config"];
  let cases = 0;
  let withErrors = 0;
  const kinds = { random: 0, mutated: 0, percent: 0, huge: 0, valid: 0 };
  for (; cases < 100_000; cases += 1) {
    const k = cases % 10;
    let input;
    if (k < 2) { input = randomString(r, 200); kinds.random += 1; }
    else if (k < 6) { input = mutate(r, r.pick(seeds)); kinds.mutated += 1; if (r.int(50) === 0) seeds.push(serialise(validState(r))); }
    else if (k < 8) { input = `?${r.pick(PARAMS)}=${Array.from({ length: 1 + r.int(12) }, () => `%${r.pick("0123456789ABCDEFzg%")}${r.pick("0123456789ABCDEFzg")}`).join("")}`; kinds.percent += 1; }
    else if (k === 8 && cases % 100 === 8) { input = hugeValue(r); kinds.huge += 1; }
    else { input = serialise(validState(r)); kinds.valid += 1; }
    if (check(input).errors.length) withErrors += 1;
  }
  for (const input of [undefined, null, 42, {}, "", "?", "&", "=", "?=", "?patch", "?patch=", "?hide=", "?cpu=maybe"]) {
    check(input);
    cases += 1;
  }
  t.diagnostic(`${cases} addresses parsed (${JSON.stringify(kinds)}), ${withErrors} with errors`);
  console.log(`url-state fuzz: ${cases} cases, ${withErrors} with errors`);
  assert.ok(cases >= 100_000);
  assert.ok(withErrors > 10_000 && withErrors < cases, "the generators make both good and bad addresses");
});

test("serialise(parse(serialise(s))) equals serialise(s) for 20,000 generated valid states", (t) => {
  const r = rng(7);
  let n = 0;
  for (; n < 20_000; n += 1) {
    const s = validState(r);
    const q = serialise(s);
    const { state, errors } = parse(q, { presets: PRESETS });
    assert.deepEqual(errors, [], q);
    assert.equal(serialise(state), q);
    assert.equal(state.preset, s.preset);
    assert.equal(state.cpu, s.cpu);
    assert.deepEqual(state.hide, s.hide);
  }
  t.diagnostic(`${n} states round-tripped`);
});

test("each kind of bad value is named with what is allowed, and the rest of the address still counts", () => {
  const { state, errors } = parse(`?preset=e4-schedules&bogus=1&scale=huge&patch=${encodeURIComponent('{"momentum": -1')}&hide=config,nope&cpu`, { presets: PRESETS });
  assert.equal(state.preset, "e4-schedules");
  assert.equal(state.cpu, true);
  assert.deepEqual(state.hide, ["config"]);
  const by = Object.fromEntries(errors.map((e) => [e.param, e.message]));
  assert.match(by['"bogus"'], /not a parameter of the lab; it knows preset, scale, cpu, patch, hide/);
  assert.match(by.scale, /"huge" is not a scale; the scales are quick, default/);
  assert.match(by.patch, /is not JSON/);
  assert.match(by.hide, /"nope" cannot be hidden; the names are preset, scale, config/);
  assert.match(parse("?patch=[1]").errors[0].message, /patch: must be a JSON object/);
  assert.match(parse("?preset=e9", { presets: PRESETS }).errors[0].message, /preset: "e9" does not exist; the presets are e1-ratio-sweep/);
  assert.match(parse("?preset=a&preset=b").errors[0].message, /preset: is given more than once/);
  // A patch the engine will refuse (momentum −1) is still a JSON object: the engine names the field, not the parser.
  assert.deepEqual(parse(`?patch=${encodeURIComponent('{"momentum":-1}')}`).state.patch, { momentum: -1 });
});
