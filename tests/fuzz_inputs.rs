//! Structured fuzzing of every input surface that reads untrusted bytes: the training config (JSON), the
//! experiment config (JSON plus a JSON merge patch) and the IDX reader (plain and gzipped).
//!
//! Why structured: random bytes almost never get past the first `{`, so most inputs here are *valid inputs with
//! one thing broken* — a field replaced by a wrong type, an out-of-range, huge or NaN-like value (JSON has no
//! NaN: the raw tokens `NaN`, `Infinity`, `1e999` are spliced into the text), a field removed or an unknown one
//! added, the text truncated; IDX headers truncated, extended, with sizes whose product overflows, and gzip
//! streams corrupted — plus a share of plain random bytes.
//!
//! Properties, for every input: no panic; the call returns within [`BOUND`]; a rejection is a `LabError` that
//! names the field (configs: the broken field itself, or, for a cross-field rule, the field the rule is stated on;
//! syntax errors give line and column) or the byte offset (IDX). Accepted configs round-trip through `to_json`.
//! Cases per property: `SGD_LAB_FUZZ_CASES` (default 100 000; scripts/test runs the default).
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use sgd_lab::data::idx::{encode_images, encode_labels, gunzip, parse_examples, parse_images, parse_labels};
use sgd_lab::error::LabError;
use sgd_lab::experiments::plan::plan;
use sgd_lab::experiments::spec::ExperimentConfig;
use sgd_lab::train::TrainConfig;

/// Longest any single input may take (dev profile, a loaded 2-core machine); the largest seen is printed.
const BOUND: Duration = Duration::from_secs(5);

fn cases() -> u32 {
    match std::env::var("SGD_LAB_FUZZ_CASES") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("SGD_LAB_FUZZ_CASES must be a whole number, got {v:?}")),
        Err(_) => 100_000,
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() })
}

/// What a property saw, printed at the end so the counts in docs/RELIABILITY.md can be checked.
#[derive(Default, Debug)]
struct Tally {
    outcomes: BTreeMap<&'static str, usize>,
    slowest: Duration,
}

impl Tally {
    fn add(&mut self, what: &'static str, took: Duration) {
        *self.outcomes.entry(what).or_default() += 1;
        self.slowest = self.slowest.max(took);
    }
    fn print(&self, name: &str) {
        let total: usize = self.outcomes.values().sum();
        // Written to stderr directly, not through eprintln!, so the counts show even when the test harness
        // captures the output of passing tests (as `cargo test` does).
        let line = format!("{name}: {total} inputs, slowest {:.1} ms; {:?}\n", self.slowest.as_secs_f64() * 1e3, self.outcomes);
        std::io::stderr().write_all(line.as_bytes()).unwrap();
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> Result<(T, Duration), TestCaseError> {
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    prop_assert!(took <= BOUND, "one input took {took:?}, more than {BOUND:?}");
    Ok((out, took))
}

// ------------------------------------------------------------------------------------------ JSON mutations

/// A JSON path segment.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    At(usize),
}

/// The path as the lab writes fields: `models[1].lr`.
fn path_name(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k)
            }
            Seg::At(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every path into `v` (objects' keys and arrays' elements, at any depth), the root excluded.
fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::At(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::At(i) => &mut v[*i],
    })
}

/// A replacement value: JSON of the wrong type or range, or a raw token JSON does not allow.
#[derive(Clone, Debug)]
enum Bad {
    Json(Value),
    Raw(&'static str),
}

fn bad_value() -> impl Strategy<Value = Bad> {
    let numbers = prop::sample::select(vec![
        json!(0),
        json!(-1),
        json!(1),
        json!(2),
        json!(u32::MAX),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-1e308),
        json!(3.5e38),
        json!(1e39),
        json!(1e-45),
        json!(-0.0),
        json!(0.5),
        json!(65_537),
        json!(10_000_001),
        json!(1.5),
    ]);
    let raw = prop::sample::select(vec!["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "18446744073709551616", "01", "1.", "\"\\ud800\"", "nul", "[1,", "{\"a\":}"]);
    prop_oneof![
        3 => numbers.prop_map(Bad::Json),
        1 => Just(Bad::Json(Value::Null)),
        1 => any::<bool>().prop_map(|b| Bad::Json(b.into())),
        2 => ".{0,12}".prop_map(|s| Bad::Json(s.into())),
        2 => any::<i64>().prop_map(|n| Bad::Json(n.into())),
        2 => any::<f64>().prop_map(|f| Bad::Json(f.into())),
        1 => prop::collection::vec(any::<i32>(), 0..4).prop_map(|v| Bad::Json(v.into())),
        1 => Just(Bad::Json(json!({"kind": "nope", "n": 3}))),
        2 => raw.prop_map(Bad::Raw),
    ]
}

/// One change to a valid document.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the value at a path.
    Replace(Index, Bad),
    /// Remove the key (or array element) at a path.
    Remove(Index),
    /// Add an unknown key to the object at a path (or the root).
    Unknown(Index, String),
    /// Cut the serialised text at a relative position.
    Truncate(Index),
    /// Random bytes instead of the document.
    Random(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        10 => (any::<Index>(), bad_value()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), "[a-z_]{1,10}").prop_map(|(i, k)| Mutation::Unknown(i, k)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Random),
    ]
}

const RAW_MARK: &str = "\u{1}RAW\u{1}";

/// Applies `m` to `doc`; returns the text and, when one field was changed, its path.
fn apply(doc: &Value, m: &Mutation) -> (String, Option<Vec<Seg>>) {
    let mut v = doc.clone();
    let mut all = Vec::new();
    paths(&v, &mut Vec::new(), &mut all);
    match m {
        Mutation::Replace(i, bad) => {
            let p = i.get(&all).clone();
            let text = match bad {
                Bad::Json(b) => {
                    *get_mut(&mut v, &p) = b.clone();
                    v.to_string()
                }
                Bad::Raw(tok) => {
                    *get_mut(&mut v, &p) = Value::String(RAW_MARK.into());
                    v.to_string().replace(&Value::String(RAW_MARK.into()).to_string(), tok)
                }
            };
            (text, Some(p))
        }
        Mutation::Remove(i) => {
            let p = i.get(&all).clone();
            let (last, parent) = p.split_last().unwrap();
            match (get_mut(&mut v, parent), last) {
                (Value::Object(o), Seg::Key(k)) => {
                    o.remove(k);
                }
                (Value::Array(a), Seg::At(j)) => {
                    a.remove(*j);
                }
                _ => unreachable!(),
            }
            (v.to_string(), Some(p))
        }
        Mutation::Unknown(i, key) => {
            let mut objects: Vec<Vec<Seg>> = all.into_iter().filter(|p| get_mut(&mut v.clone(), p).is_object()).collect();
            objects.push(Vec::new());
            let mut p = i.get(&objects).clone();
            if let Value::Object(o) = get_mut(&mut v, &p) {
                let key = format!("zz_{key}");
                o.insert(key.clone(), json!(1));
                p.push(Seg::Key(key));
            }
            (v.to_string(), Some(p))
        }
        Mutation::Truncate(i) => {
            let text = v.to_string();
            let cut = i.index(text.len());
            let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap();
            (text[..cut].to_string(), None)
        }
        Mutation::Random(bytes) => (String::from_utf8_lossy(bytes).into_owned(), None),
    }
}

/// Fields whose rules involve another field: an error may be stated on the rule's field instead.
fn cross_field(changed: &str, field: &str) -> bool {
    let top = changed.split(['.', '[']).next().unwrap_or("");
    let related: &[&str] = match top {
        // N, the classes and the input width are checked against the model, B and the schedule.
        "data" | "dataset" | "model" => &["model", "batch_size", "data", "dataset", "schedule.factors", "experiment"],
        "batch_size" => &["schedule.factors"],
        "sampling" => &["batch_size", "schedule.factors", "experiment"],
        "budget" | "seeds" | "max_models_per_group" | "chunk_steps" | "divergence_threshold" | "weight_decay" | "momentum" => &["experiment", "group"],
        "experiment" => &["experiment", "dataset", "batch_size", "group"],
        _ => &[],
    };
    related.iter().any(|r| field.starts_with(r))
}

/// Checks that a config rejection names the changed field (or the rule's field), or line and column.
fn check_config_error(e: &LabError, changed: Option<&[Seg]>) -> Result<&'static str, TestCaseError> {
    let LabError::Config { field, message } = e else {
        return Err(TestCaseError::fail(format!("a config was rejected with a non-config error: {e}")));
    };
    prop_assert!(!field.is_empty() && !message.is_empty(), "empty field or message: {e}");
    let positioned = message.contains("line ") && message.contains("column ");
    let Some(path) = changed else {
        prop_assert!(positioned || message.contains('`'), "a syntax error without line and column: {e}");
        return Ok("rejected: syntax or shape (line and column)");
    };
    let name = path_name(path);
    let keys: Vec<&str> = path.iter().filter_map(|s| if let Seg::Key(k) = s { Some(k.as_str()) } else { None }).collect();
    // Planning checks each group as a training config and wraps its error: `group 3 (…)`: invalid config field `model`: ….
    let inner = field.starts_with("group ").then(|| message.strip_prefix("invalid config field `").and_then(|m| m.split('`').next())).flatten();
    let field_clean = inner.unwrap_or(field).trim_start_matches('.');
    if field_clean == name || name.starts_with(field_clean) || field_clean.starts_with(&name) || message.contains(&name) {
        return Ok("rejected: names the changed field");
    }
    if keys.last().is_some_and(|k| message.contains(&format!("`{k}`")) || field_clean.ends_with(k)) {
        return Ok("rejected: names the changed field");
    }
    if cross_field(&name, field_clean) {
        return Ok("rejected: names the rule's field (cross-field)");
    }
    if positioned && (field == "(json)" || field == "(override)") {
        // A raw token JSON does not allow (NaN, 1e999, ...) fails before any field is known.
        return Ok("rejected: not JSON (line and column)");
    }
    Err(TestCaseError::fail(format!("changed `{name}`, but the error names neither it nor a related field: {e}")))
}

// ------------------------------------------------------------------------------------------- TrainConfig

fn train_bases() -> Vec<Value> {
    vec![
        json!({
            "model": {"input": 2, "hidden": [16, 8], "classes": 2, "activation": "tanh", "init": "xavier"},
            "data": {"kind": "two_spirals", "n": 64, "noise": 0.1, "seed": 1},
            "batch_size": 8, "steps": 10, "eval_every": 5, "chunk_steps": 5, "divergence_threshold": 1000.0,
            "models": [{"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0001, "seed": 1}, {"lr": 0.05}],
            "sharpness": {"every": 5, "examples": 32, "iterations": 10, "trace": true}
        }),
        json!({
            "model": {"input": 2, "hidden": [8], "classes": 3, "activation": "relu", "init": "he"},
            "data": {"kind": "blobs", "n": 90, "classes": 3, "noise": 0.5, "seed": 2},
            "batch_size": 10, "steps": 20, "sampling": "with_replacement",
            "models": [{"lr": 0.2}],
            "schedule": {"of": "batch_size", "factors": [1, 2, 5], "stage_epochs": 0.5}
        }),
        json!({
            "model": {"input": 784, "hidden": [32], "classes": 10, "activation": "relu", "init": "he"},
            "dataset": {"name": "fashion-mnist", "train_size": 1000, "validation_size": 200, "random_label_fraction": 0.2, "seed": 3},
            "batch_size": 100, "steps": 50,
            "models": [{"lr": 0.05, "seed": 4}, {"lr": 0.1, "seed": 5}],
            "schedule": {"of": "learning_rate", "factors": [1, 0.5], "stage_epochs": 1}
        }),
    ]
}

#[test]
fn train_config_json_never_panics_and_every_rejection_names_the_field() {
    let bases = train_bases();
    for b in &bases {
        TrainConfig::from_json(&b.to_string()).unwrap_or_else(|e| panic!("base config is valid: {e}"));
    }
    let tally = RefCell::new(Tally::default());
    runner()
        .run(&(0..bases.len(), mutation()), |(bi, m)| {
            let (text, changed) = apply(&bases[bi], &m);
            let (result, took) = timed(|| TrainConfig::from_json(&text))?;
            let what = match result {
                Ok(cfg) => {
                    let again = TrainConfig::from_json(&cfg.to_json()).map_err(|e| TestCaseError::fail(format!("an accepted config does not round-trip: {e}")))?;
                    prop_assert_eq!(again, cfg);
                    "accepted (a valid change)"
                }
                Err(e) => check_config_error(&e, changed.as_deref())?,
            };
            tally.borrow_mut().add(what, took);
            Ok(())
        })
        .unwrap();
    tally.borrow().print("TrainConfig JSON");
}

// -------------------------------------------------------------------------------------- ExperimentConfig

fn presets() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    assert!(files.len() >= 6, "the shipped presets are the fuzz bases");
    files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

/// A merge patch that makes the mutation: the nested objects down to the changed key, then the bad value
/// (`null` for a removal, which a merge patch deletes).
fn as_patch(doc: &Value, m: &Mutation) -> Option<(String, Vec<Seg>)> {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let (idx, leaf) = match m {
        Mutation::Replace(i, Bad::Json(b)) => (i, b.clone()),
        Mutation::Remove(i) => (i, Value::Null),
        _ => return None,
    };
    // A merge patch cannot address array elements: cut the path at the first index.
    let p: Vec<Seg> = idx.get(&all).iter().take_while(|s| matches!(s, Seg::Key(_))).cloned().collect();
    if p.is_empty() {
        return None;
    }
    let patch = p.iter().rev().fold(leaf, |inner, seg| match seg {
        Seg::Key(k) => json!({ k.as_str(): inner }),
        Seg::At(_) => unreachable!(),
    });
    Some((patch.to_string(), p))
}

#[test]
fn experiment_config_json_and_merge_patches_never_panic_and_every_rejection_names_the_field() {
    let bases = presets();
    for b in &bases {
        let cfg = ExperimentConfig::from_json(&b.to_string()).unwrap_or_else(|e| panic!("preset is valid: {e}"));
        plan(&cfg).unwrap();
    }
    let tally = RefCell::new(Tally::default());
    let strategy = (0..bases.len(), mutation(), any::<bool>(), prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..24)));
    runner()
        .run(&strategy, |(bi, m, via_patch, raw_patch)| {
            let base = bases[bi].to_string();
            let (text, patch, changed) = match (raw_patch, via_patch.then(|| as_patch(&bases[bi], &m)).flatten()) {
                // Random bytes, or a JSON scalar/array, as the patch.
                (Some(bytes), _) => {
                    let p = if bytes.first().is_some_and(|b| b % 2 == 0) { String::from_utf8_lossy(&bytes).into_owned() } else { format!("[{}]", bytes.len()) };
                    (base, Some(p), None)
                }
                (None, Some((p, path))) => (base, Some(p), Some(path)),
                (None, None) => {
                    let (t, c) = apply(&bases[bi], &m);
                    (t, None, c)
                }
            };
            let (result, took) = timed(|| ExperimentConfig::from_json_with_patch(&text, patch.as_deref()).and_then(|cfg| plan(&cfg).map(|jobs| (cfg, jobs.len()))))?;
            let what = match result {
                Ok((cfg, jobs)) => {
                    prop_assert!(jobs >= 1, "an accepted experiment plans no job");
                    let again = ExperimentConfig::from_json(&cfg.to_json()).map_err(|e| TestCaseError::fail(format!("an accepted config does not round-trip: {e}")))?;
                    prop_assert_eq!(again, cfg);
                    if patch.is_some() { "accepted (a valid patch)" } else { "accepted (a valid change)" }
                }
                Err(e) => check_config_error(&e, changed.as_deref())?,
            };
            tally.borrow_mut().add(what, took);
            Ok(())
        })
        .unwrap();
    tally.borrow().print("ExperimentConfig JSON + merge patches");
}

// ---------------------------------------------------------------------------------------------------- IDX

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One change to a valid IDX file.
#[derive(Clone, Debug)]
enum IdxMutation {
    None,
    /// Cut the file at a relative position.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Overwrite the header word at 0, 4, 8 or 12 (huge values make the declared size overflow u32 and usize).
    Word(u8, u32),
    /// XOR one byte.
    Flip(Index, u8),
    /// Random bytes instead of the file.
    Random(Vec<u8>),
}

fn idx_mutation() -> impl Strategy<Value = IdxMutation> {
    let word = prop_oneof![Just(u32::MAX), Just(0x8000_0000), Just(65_536), Just(0), Just(0x0000_0803), Just(0x0000_0801), any::<u32>()];
    prop_oneof![
        1 => Just(IdxMutation::None),
        3 => any::<Index>().prop_map(IdxMutation::Truncate),
        2 => prop::collection::vec(any::<u8>(), 1..16).prop_map(IdxMutation::Extend),
        4 => (0u8..4, word).prop_map(|(w, v)| IdxMutation::Word(w, v)),
        3 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| IdxMutation::Flip(i, x)),
        2 => prop::collection::vec(any::<u8>(), 0..80).prop_map(IdxMutation::Random),
    ]
}

fn mutate_bytes(mut b: Vec<u8>, m: &IdxMutation) -> Vec<u8> {
    match m {
        IdxMutation::None => {}
        IdxMutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
        IdxMutation::Extend(x) => b.extend_from_slice(x),
        IdxMutation::Word(w, v) => {
            let at = 4 * *w as usize;
            if b.len() >= at + 4 {
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        IdxMutation::Flip(i, x) => {
            if !b.is_empty() {
                let j = i.index(b.len());
                b[j] ^= x;
            }
        }
        IdxMutation::Random(r) => return r.clone(),
    }
    b
}

#[test]
fn the_idx_reader_never_panics_on_plain_or_gzip_bytes_and_every_rejection_names_a_byte_offset() {
    let tally = RefCell::new(Tally::default());
    // (images or labels, n, rows, cols, pixel seed, mutation, where: 0 plain, 1 gzip then mutate, 2 mutate then gzip)
    let strategy = (any::<bool>(), 0u32..6, 1u32..5, 1u32..5, any::<u8>(), idx_mutation(), 0u8..3);
    runner()
        .run(&strategy, |(images, n, rows, cols, seed, m, wrap)| {
            let body: Vec<u8> = (0..n * if images { rows * cols } else { 1 }).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) % 10).collect();
            let plain = if images { encode_images(n, rows, cols, &body) } else { encode_labels(&body) };
            let bytes = match wrap {
                0 => mutate_bytes(plain, &m),
                1 => mutate_bytes(gz(&plain), &m),
                _ => gz(&mutate_bytes(plain, &m)),
            };
            let file = if wrap == 0 { "fuzz-idx" } else { "fuzz-idx.gz" };
            let (result, took) = timed(|| {
                if images {
                    parse_images(file, &bytes).map(|im| {
                        assert_eq!(im.pixels.len(), im.n * im.rows * im.cols, "accepted images hold exactly n × rows × cols bytes");
                    })
                } else {
                    parse_labels(file, &bytes).map(|_| ())
                }
            })?;
            let what = match result {
                Ok(()) => "accepted (still a consistent file)",
                Err(LabError::Data(msg)) => {
                    prop_assert!(msg.starts_with(file), "the error names the file: {msg}");
                    prop_assert!(msg.contains("byte offset"), "the error names the byte offset: {msg}");
                    if msg.contains("gzip") {
                        "rejected: corrupt gzip (compressed byte offset)"
                    } else if msg.contains("magic") {
                        "rejected: bad magic (byte offset 0)"
                    } else if msg.contains("truncated") {
                        "rejected: truncated (byte offset)"
                    } else {
                        "rejected: other (byte offset)"
                    }
                }
                Err(e) => return Err(TestCaseError::fail(format!("an IDX file was rejected with a non-data error: {e}"))),
            };
            tally.borrow_mut().add(what, took);
            Ok(())
        })
        .unwrap();
    tally.borrow().print("IDX reader");
}

#[test]
fn the_reader_of_idx_files_of_your_own_never_panics_and_every_rejection_names_a_byte_offset() {
    let tally = RefCell::new(Tally::default());
    // (dimensions per example 1..=3, n, sizes, byte seed, mutation, gzip or not)
    let strategy = (1usize..=3, 0u32..5, prop::collection::vec(1u32..4, 3), any::<u8>(), idx_mutation(), any::<bool>());
    runner()
        .run(&strategy, |(dims, n, sizes, seed, m, gzip)| {
            let sizes = &sizes[..dims];
            let per: u32 = sizes.iter().product();
            let mut plain = (0x0000_0801u32 + dims as u32).to_be_bytes().to_vec();
            for w in std::iter::once(n).chain(sizes.iter().copied()) {
                plain.extend_from_slice(&w.to_be_bytes());
            }
            plain.extend((0..n * per).map(|i| (i as u8).wrapping_add(seed)));
            let bytes = if gzip { mutate_bytes(gz(&plain), &m) } else { mutate_bytes(plain, &m) };
            let file = if gzip { "own.gz" } else { "own" };
            let (result, took) = timed(|| parse_examples(file, &bytes).map(|e| assert_eq!(e.pixels.len(), e.n * e.dim(), "accepted examples hold exactly n × dim bytes")))?;
            let what = match result {
                Ok(()) => "accepted (still a consistent file)",
                Err(LabError::Data(msg)) => {
                    prop_assert!(msg.starts_with(file), "the error names the file: {msg}");
                    prop_assert!(msg.contains("byte offset"), "the error names the byte offset: {msg}");
                    if msg.contains("magic") {
                        "rejected: bad magic (byte offset 0)"
                    } else {
                        "rejected: sizes, truncation or gzip (byte offset)"
                    }
                }
                Err(e) => return Err(TestCaseError::fail(format!("an IDX file was rejected with a non-data error: {e}"))),
            };
            tally.borrow_mut().add(what, took);
            Ok(())
        })
        .unwrap();
    tally.borrow().print("IDX reader of your own files");
}

#[test]
fn a_gzip_stream_that_decompresses_past_the_cap_is_refused_naming_the_offset_where_it_stopped() {
    let z = gz(&vec![7u8; 1 << 16]);
    let e = gunzip("bomb.gz", &z, 4096).unwrap_err().to_string();
    assert!(e.contains("bomb.gz") && e.contains("more than 4096 bytes") && e.contains("byte offset 4096"), "{e}");
}
