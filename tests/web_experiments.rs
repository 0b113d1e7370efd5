//! Browser tests of the experiments' JavaScript face (`sgd_lab::web::Experiment`), run inside Chromium by
//! `wasm-pack test --headless --chrome --test web_experiments` (see scripts/test). Everything runs on the CPU
//! at a tiny scale; the claims report of a finished sweep.
#![cfg(target_arch = "wasm32")]

mod common_web;

use std::cell::RefCell;
use std::rc::Rc;

use common_web::{get, message, tiny_files};
use sgd_lab::experiments::presets::PRESETS;
use sgd_lab::experiments::{ExperimentConfig, ExperimentResults};
use sgd_lab::web::{presets, Experiment};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A 2→8→2 tanh net on 64 spiral points, 20 steps in chunks of 5: η ∈ {0.05, 0.1} × B ∈ {8, 16} × seeds
/// {1, 2}, i.e. two jobs (one per B) of four models.
const RATIO_SWEEP: &str = r#"{"id":"t","title":"t","model":{"input":2,"hidden":[8],"classes":2,"activation":"tanh","init":"xavier"},
    "data":{"kind":"two_spirals","n":64,"seed":1},"budget":{"steps":20},"seeds":[1,2],"chunk_steps":5,
    "analysis":{"hessian_examples":32,"lanczos_iterations":4},
    "experiment":{"kind":"ratio_sweep","lrs":[0.05,0.1],"batch_sizes":[8,16]}}"#;

/// A 784→16→10 net on the tiny IDX set: 40 training examples, half of them with a random label.
const MEMORIZATION: &str = r#"{"id":"m","title":"m","model":{"input":784,"hidden":[16],"classes":10,"activation":"relu","init":"he"},
    "dataset":{"name":"fashion-mnist","train_size":40,"validation_size":10,"seed":1},"budget":{"steps":20},"seeds":[1],
    "chunk_steps":10,"analysis":{"evaluations":2},
    "experiment":{"kind":"memorization","random_label_fractions":[0.5],"lrs":[0.05],"batch_sizes":[10],"momenta":[0.0]}}"#;

async fn cpu(config: &str, patch: Option<&str>) -> Result<Experiment, String> {
    Experiment::create(config.into(), patch.map(String::from), false).await.map_err(|e| message(&JsValue::from(e)))
}

/// The `type` of an event.
fn ty(ev: &JsValue) -> String {
    get(ev, "type").as_string().unwrap()
}

/// Awaits one `step()`: its events.
async fn step(ex: &Experiment) -> Result<Vec<JsValue>, String> {
    let events = JsFuture::from(ex.step()).await.map_err(|e| message(&e))?;
    Ok(js_sys::Array::from(&events).iter().collect())
}

/// An `onEvent` callback for `Experiment.run` (an `Err` is thrown into JS).
type OnEvent = Closure<dyn FnMut(JsValue) -> Result<(), JsValue>>;

/// An `onEvent` callback that records every event and runs `then` on it.
fn recorder(then: impl Fn(&JsValue) -> Result<(), JsValue> + 'static) -> (OnEvent, Rc<RefCell<Vec<JsValue>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let f = Closure::new(move |ev: JsValue| {
        log.borrow_mut().push(ev.clone());
        then(&ev)
    });
    (f, seen)
}

/// `ex.run(onEvent, signal)`: resolves to its boolean or the rejection's message.
async fn run(ex: &Experiment, on_event: &OnEvent, signal: Option<js_sys::Object>) -> Result<bool, String> {
    let f: &js_sys::Function = on_event.as_ref().unchecked_ref();
    let done = JsFuture::from(ex.run(f.clone(), signal)).await.map_err(|e| message(&e))?;
    Ok(done.as_bool().expect("run resolves to a boolean"))
}

/// The saved results, read back as Rust.
fn saved(ex: &Experiment) -> ExperimentResults {
    ExperimentResults::from_json(&ex.results_json()).expect("resultsJson round-trips")
}

#[wasm_bindgen_test]
fn presets_lists_every_shipped_preset_with_ids_and_parseable_json() {
    let list = js_sys::Array::from(&presets().expect("presets()"));
    assert_eq!(list.length() as usize, PRESETS.len());
    for (p, (id, _)) in list.iter().zip(PRESETS) {
        assert_eq!(get(&p, "id").as_string().unwrap(), id);
        let json = get(&p, "json").as_string().unwrap();
        let config = ExperimentConfig::from_json(&json).expect("the preset's JSON is a valid config");
        assert_eq!(config.id, id);
        assert!(js_sys::JSON::parse(&json).is_ok());
        assert_eq!(get(&p, "kind").as_string().unwrap(), config.experiment.name());
        for field in ["title", "description", "claim"] {
            assert!(!get(&p, field).as_string().unwrap().is_empty(), "{id}: empty {field}");
        }
    }
}

#[wasm_bindgen_test]
async fn a_tiny_ratio_sweep_runs_to_done_on_the_cpu_with_one_model_per_setting() {
    let ex = cpu(RATIO_SWEEP, None).await.unwrap();
    assert!(!ex.on_gpu() && ex.fallback_reason().unwrap().contains("not requested") && ex.backend().starts_with("CPU"));
    assert_eq!(ex.needed_datasets(), Vec::<String>::new());
    let jobs = js_sys::Array::from(&ex.jobs().unwrap());
    assert_eq!(jobs.length(), 2);
    assert_eq!(get(&jobs.get(0), "label").as_string().unwrap(), "B=8, 20 steps");
    assert_eq!((get(&jobs.get(1), "models").as_f64(), get(&jobs.get(1), "steps").as_f64()), (Some(4.0), Some(20.0)));
    assert!(!ex.done() && ex.fraction() == 0.0);

    let (on_event, seen) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    assert!(ex.done() && ex.fraction() == 1.0);
    let events = seen.take();
    let types: Vec<String> = events.iter().map(ty).collect();
    assert_eq!(types.iter().filter(|t| *t == "job_started").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "measuring").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "job_finished").count(), 2, "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("finished"));
    let fractions: Vec<f64> = events.iter().filter(|e| ty(e) == "progress").map(|e| get(e, "fraction").as_f64().unwrap()).collect();
    assert_eq!(fractions.len(), 8, "4 chunks of 5 steps per job");
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
    assert_eq!(fractions.last(), Some(&1.0));

    let r = saved(&ex);
    let mut cells: Vec<(u32, usize, u64)> = r.models().map(|m| (m.tag.lr.to_bits(), m.tag.batch_size, m.tag.seed)).collect();
    cells.sort_unstable();
    cells.dedup();
    assert_eq!(cells.len(), 8, "one model per (η, B, seed)");
    assert_eq!(r.models().count(), 8);
    for m in r.models() {
        let l = m.lambda_max.expect("λ_max measured at the end");
        assert!(l.is_finite() && l > 0.0, "{}: λ_max {l}", m.tag.label);
        assert_eq!(m.steps, 20);
    }
    // The same results as plain JS objects, and as CSV.
    let js = ex.results().unwrap();
    let model = js_sys::Array::from(&get(&js_sys::Array::from(&get(&js, "jobs")).get(1), "models")).get(3);
    assert_eq!(get(&get(&model, "tag"), "batch_size").as_f64(), Some(16.0));
    assert_eq!(get(&model, "lambda_max").as_f64(), r.jobs[1].models[3].lambda_max);
    assert!(get(&get(&model, "last"), "train_loss").as_f64().unwrap().is_finite());
    assert_eq!(ex.results_csv().lines().count(), 9);
    // The claims report: claims with verdicts, SVG figures, and Markdown linking them.
    let rep = ex.report().expect("report()");
    let claims = js_sys::Array::from(&get(&rep, "claims"));
    assert!(claims.length() >= 4);
    for c in claims.iter() {
        let v = get(&c, "verdict").as_string().unwrap();
        assert!(["holds", "does_not_hold", "inconclusive"].contains(&v.as_str()), "{v}");
    }
    let figures = js_sys::Array::from(&get(&rep, "figures"));
    assert!(figures.length() >= 3);
    let markdown = get(&rep, "markdown").as_string().unwrap();
    for f in figures.iter() {
        assert!(get(&f, "svg").as_string().unwrap().starts_with("<svg"));
        assert!(markdown.contains(&format!("{}.svg", get(&f, "name").as_string().unwrap())));
    }
    // Done: a further step reports nothing.
    assert!(step(&ex).await.unwrap().is_empty());
}

#[wasm_bindgen_test]
async fn cancel_mid_run_stops_it_and_keeps_the_results_so_far() {
    let ex = cpu(RATIO_SWEEP, None).await.unwrap();
    while !step(&ex).await.unwrap().iter().any(|e| ty(e) == "job_finished") {}
    ex.cancel();
    assert!(ex.done());
    assert!(step(&ex).await.unwrap().is_empty());
    let (on_event, seen) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(false), "a cancelled experiment does not finish");
    assert!(seen.borrow().is_empty());
    let r = saved(&ex);
    assert_eq!((r.jobs.len(), r.models().count()), (1, 4));
    assert!(ex.fraction() > 0.0 && ex.fraction() < 1.0);
    assert_eq!(js_sys::Array::from(&get(&ex.results().unwrap(), "jobs")).length(), 1);
}

#[wasm_bindgen_test]
async fn an_aborted_signal_pauses_run_and_a_throwing_on_event_rejects_it_without_breaking_the_experiment() {
    let ex = cpu(RATIO_SWEEP, None).await.unwrap();
    // Abort as soon as the first job has finished.
    let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"AbortController".into()).unwrap().unchecked_into();
    let controller = js_sys::Reflect::construct(&ctor, &js_sys::Array::new()).unwrap();
    let signal: js_sys::Object = get(&controller, "signal").unchecked_into();
    let abort: js_sys::Function = get(&controller, "abort").unchecked_into();
    let c = controller.clone();
    let (on_event, _) = recorder(move |ev| if ty(ev) == "job_finished" { abort.call0(&c).map(drop) } else { Ok(()) });
    assert_eq!(run(&ex, &on_event, Some(signal)).await, Ok(false));
    assert!(!ex.done());
    assert_eq!(saved(&ex).jobs.len(), 1);
    // An exception in onEvent rejects run() with it...
    let (throwing, _) = recorder(|ev| if ty(ev) == "job_started" { Err(js_sys::Error::new("page bug").into()) } else { Ok(()) });
    assert_eq!(run(&ex, &throwing, None).await, Err("page bug".to_string()));
    // ... and the experiment goes on.
    let (on_event, seen) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    assert_eq!(seen.borrow().last().map(ty).as_deref(), Some("finished"));
    assert_eq!(saved(&ex).models().count(), 8);
}

#[wasm_bindgen_test]
async fn parameters_safetensors_gives_each_finished_groups_models_and_names_a_group_it_cannot() {
    use sgd_lab::train::safetensors::params_from_safetensors;
    let ex = cpu(RATIO_SWEEP, None).await.unwrap();
    let err = |r: Result<Vec<u8>, JsError>| message(&JsValue::from(r.unwrap_err()));
    let e = err(ex.parameters_safetensors(0));
    assert!(e.contains("job 0") && e.contains("not finished yet"), "{e}");
    let (on_event, _) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    for job in 0..2 {
        let bytes = ex.parameters_safetensors(job).unwrap();
        let (layout, values) = params_from_safetensors(&bytes).unwrap();
        assert_eq!(layout.params_per_model, 2 * 8 + 8 + 8 * 2 + 2, "2→8→2");
        assert_eq!(values.len(), 4 * layout.params_per_model, "four models per group");
        assert!(values.iter().all(|v| v.is_finite()));
    }
    assert_ne!(ex.parameters_safetensors(0).unwrap(), ex.parameters_safetensors(1).unwrap(), "B=8 and B=16 train differently");
    let e = err(ex.parameters_safetensors(2));
    assert!(e.contains("job") && e.contains("below 2"), "{e}");
}

#[wasm_bindgen_test]
async fn a_second_step_while_one_is_pending_is_rejected_not_panicked_on() {
    let ex = cpu(RATIO_SWEEP, None).await.unwrap();
    let (a, b) = (ex.step(), ex.step());
    let (ra, rb) = (JsFuture::from(a).await, JsFuture::from(b).await);
    // The CPU finishes a step before the second promise starts, so both may succeed; neither may panic.
    assert!(ra.is_ok());
    if let Err(e) = rb {
        assert!(message(&e).contains("before the previous step finished"), "{}", message(&e));
    }
    assert!(step(&ex).await.is_ok());
}

#[wasm_bindgen_test]
async fn a_bad_field_or_a_malformed_patch_is_refused_with_the_field_named() {
    let m = cpu(RATIO_SWEEP, Some(r#"{"seeds": []}"#)).await.err().unwrap();
    assert!(m.contains("`seeds`"), "{m}");
    let m = cpu(RATIO_SWEEP, Some(r#"{"experiment": {"lrs": [0.1, -1]}}"#)).await.err().unwrap();
    assert!(m.contains("`experiment.lrs[1]`"), "{m}");
    let m = cpu(RATIO_SWEEP, Some("{ not json")).await.err().unwrap();
    assert!(m.contains("(override)"), "{m}");
    let m = cpu("{ not json", None).await.err().unwrap();
    assert!(m.contains("(json)"), "{m}");
    let m = Experiment::from_preset("e9".into(), None, false).await.err().map(|e| message(&e.into())).unwrap();
    assert!(m.contains("`preset`") && m.contains("e1-ratio-sweep"), "{m}");
    let m = Experiment::resume("{}".into(), false, None).await.err().map(|e| message(&e.into())).unwrap();
    assert!(m.contains("results file"), "{m}");
    // A preset with a patch is planned like any config.
    let ex = Experiment::from_preset("e1-ratio-sweep".into(), Some(r#"{"seeds": [1], "experiment": {"extra_budgets": []}}"#.into()), false).await.unwrap();
    let batch_sizes = ExperimentConfig::from_json(PRESETS[0].1).unwrap();
    let sgd_lab::experiments::ExperimentKind::RatioSweep { batch_sizes, .. } = batch_sizes.experiment else { panic!("E1 is a ratio sweep") };
    assert_eq!(js_sys::Array::from(&ex.jobs().unwrap()).length() as usize, batch_sizes.len(), "one group per batch size");
}

#[wasm_bindgen_test]
async fn stepping_a_real_data_config_before_add_dataset_names_the_missing_set() {
    let ex = Experiment::from_preset("e5-memorization".into(), Some(r#"{"seeds": [1]}"#.into()), false).await.unwrap();
    assert_eq!(ex.needed_datasets(), vec!["mnist".to_string()]);
    let m = step(&ex).await.err().unwrap();
    assert!(m.contains("mnist") && m.contains("addDataset"), "{m}");
    let [a, b, c, d] = tiny_files();
    let m = ex.add_dataset("fashion-mnist", a.clone(), b.clone(), c.clone(), d.clone()).err().map(|e| message(&e.into())).unwrap();
    assert!(m.contains("does not use fashion-mnist"), "{m}");
    let m = ex.add_dataset("cifar-10", a.clone(), b.clone(), c.clone(), d.clone()).err().map(|e| message(&e.into())).unwrap();
    assert!(m.contains("cifar-10") && m.contains("mnist"), "{m}");
    let m = ex.add_dataset("mnist", a, b[..b.len() - 3].to_vec(), c, d).err().map(|e| message(&e.into())).unwrap();
    assert!(m.contains("mnist/train-labels-idx1-ubyte.gz"), "{m}");
    assert!(step(&ex).await.err().unwrap().contains("mnist"), "a refused set is not added");
}

#[wasm_bindgen_test]
async fn a_tiny_memorization_on_idx_bytes_runs_and_its_curves_carry_corrupted_accuracy() {
    let ex = cpu(MEMORIZATION, None).await.unwrap();
    assert_eq!(ex.needed_datasets(), vec!["fashion-mnist".to_string()]);
    let [a, b, c, d] = tiny_files();
    ex.add_dataset("fashion-mnist", a, b, c, d).expect("the tiny set parses");
    let (on_event, _) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    let r = saved(&ex);
    let m = r.models().next().expect("one model");
    assert_eq!((r.models().count(), m.tag.random_label_fraction, m.tag.train_size), (1, 0.5, 40));
    assert_eq!(m.curve.len(), 2, "after steps 10 and 20");
    for p in &m.curve {
        for (what, v) in [("corrupted", p.corrupted_accuracy), ("clean", p.clean_accuracy), ("validation", p.validation_accuracy)] {
            let v = v.unwrap_or_else(|| panic!("step {}: no {what} accuracy", p.step));
            assert!((0.0..=1.0).contains(&v), "{what} accuracy {v}");
        }
    }
    assert_eq!(m.lambda_max, None, "memorization measures no Hessian");
}

#[wasm_bindgen_test]
async fn resuming_from_results_saved_mid_run_ends_with_the_same_results_as_an_uninterrupted_run() {
    let whole = cpu(RATIO_SWEEP, None).await.unwrap();
    let (on_event, _) = recorder(|_| Ok(()));
    assert_eq!(run(&whole, &on_event, None).await, Ok(true));

    let first = cpu(RATIO_SWEEP, None).await.unwrap();
    while !step(&first).await.unwrap().iter().any(|e| ty(e) == "job_finished") {}
    step(&first).await.unwrap(); // job 1 starts and is abandoned with `first`
    let json = first.results_json();
    drop(first);

    let resumed = Experiment::resume(json, false, None).await.expect("the saved results resume");
    assert_eq!(resumed.fraction(), 0.5, "job 0 is done");
    let (on_event, seen) = recorder(|_| Ok(()));
    assert_eq!(run(&resumed, &on_event, None).await, Ok(true));
    let started: Vec<f64> = seen.borrow().iter().filter(|e| ty(e) == "job_started").map(|e| get(e, "job").as_f64().unwrap()).collect();
    assert_eq!(started, vec![1.0], "only the unfinished job runs again");

    let (a, b) = (saved(&whole), saved(&resumed));
    assert_eq!(a.jobs.len(), 2);
    assert_eq!(b.jobs.len(), 2);
    for (x, y) in a.jobs.iter().zip(&b.jobs) {
        assert_eq!(x.job, y.job);
        assert_eq!(serde_json::to_string(&x.models).unwrap(), serde_json::to_string(&y.models).unwrap(), "job {}", x.job);
        assert_eq!(x.models, y.models, "job {}: bit-identical numbers", x.job);
    }
}

#[wasm_bindgen_test]
async fn in_the_page_the_trace_takes_analysis_trace_samples_and_the_results_record_the_probe_seeds_and_the_data() {
    let ex = cpu(RATIO_SWEEP, Some(r#"{"analysis": {"trace_samples": 3}}"#)).await.unwrap();
    let (on_event, _) = recorder(|_| Ok(()));
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    let r = saved(&ex);
    assert!(r.models().all(|m| m.trace_samples == Some(3) && m.probe_seed.is_some_and(|s| s < 1 << 53)), "3 probes each; seeds exact in JS");
    assert_eq!(r.data.len(), 1);
    assert_eq!((r.data[0].source.as_str(), r.data[0].train_examples), ("synthetic", 64));

    // Real data: the files' SHA-256 beside the pins (the tiny stand-in files are not the pinned ones, and say so).
    let ex = cpu(MEMORIZATION, None).await.unwrap();
    let [a, b, c, d] = tiny_files();
    ex.add_dataset("fashion-mnist", a, b, c, d).expect("the tiny set parses");
    assert_eq!(run(&ex, &on_event, None).await, Ok(true));
    let rec = &saved(&ex).data[0];
    assert_eq!(rec.files.len(), 4);
    assert!(rec.files.iter().all(|f| f.matches_pin() == Some(false)), "{:?}", rec.files);
    assert_eq!((rec.train_examples, rec.validation_examples, rec.random_labels), (40, 10, 20));
}

#[wasm_bindgen_test]
async fn an_experiment_on_idx_files_of_your_own_asks_for_no_download_and_its_first_step_says_to_use_the_cli() {
    // As a results file made by `sgd-lab` holds it: the files' shape recorded, so the config validates here.
    let cfg = RATIO_SWEEP.replace(
        r#""data":{"kind":"two_spirals","n":64,"seed":1}"#,
        r#""dataset":{"name":"idx","files":{"train_images":"x.idx","train_labels":"y.idx","shape":{"train_len":64,"test_len":0,"dim":2,"classes":2}}}"#,
    );
    let ex = cpu(&cfg, None).await.unwrap();
    assert_eq!(ex.needed_datasets(), Vec::<String>::new(), "nothing the page could fetch");
    let m = step(&ex).await.err().expect("the first group needs the files");
    assert!(m.contains("dataset.files") && m.contains("sgd-lab run"), "{m}");
}
