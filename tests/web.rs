//! Browser tests of the JavaScript face (`sgd_lab::web::FreePlay`), run inside Chromium by
//! `wasm-pack test --headless --chrome` (webdriver.json turns WebGPU on; see scripts/test).
#![cfg(target_arch = "wasm32")]

mod common_web;

use common_web::{get, tiny_files};
use sgd_lab::web::FreePlay;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The page's demo (www/free/data-set-configs.js): a 2→64→64→2 ReLU MLP on 512 spiral points, batch 32, chunks of 25
/// steps, evaluated every 50; its loss falls from about 0.68 to about 0.32 in 600 steps.
fn config(steps: usize, lr: f32) -> String {
    format!(
        r#"{{"model":{{"input":2,"hidden":[64,64],"classes":2,"activation":"relu","init":"he"}},
            "data":{{"kind":"two_spirals","n":512,"noise":0.1,"seed":1}},
            "batch_size":32,"steps":{steps},"sampling":"shuffle",
            "models":[{{"lr":{lr},"momentum":0.9,"weight_decay":0.0,"seed":1}}],
            "eval_every":50,"chunk_steps":25}}"#
    )
}

/// Runs `lab` to the end; returns (event types in order, every step's loss of model 0).
async fn run_to_end(lab: &FreePlay) -> (Vec<String>, Vec<f64>) {
    let (mut types, mut losses) = (Vec::new(), Vec::new());
    while !lab.done() {
        let events = JsFuture::from(lab.step()).await.expect("step resolves");
        for ev in js_sys::Array::from(&events).iter() {
            let ty = get(&ev, "type").as_string().unwrap();
            if ty == "steps" {
                let model0 = js_sys::Array::from(&get(&ev, "losses")).get(0);
                losses.extend(js_sys::Array::from(&model0).iter().map(|v| v.as_f64().unwrap()));
            }
            types.push(ty);
        }
    }
    (types, losses)
}

#[wasm_bindgen_test]
async fn an_invalid_config_is_refused_with_the_field_named() {
    let err = FreePlay::create(config(40, -1.0), false).await.err().expect("a negative learning rate is refused");
    let message = get(&JsValue::from(err), "message").as_string().unwrap();
    assert!(message.contains("models[0].lr"), "{message}");
}

#[wasm_bindgen_test]
async fn malformed_json_is_refused_not_panicked_on() {
    assert!(FreePlay::create("{ not json".into(), false).await.is_err());
    assert!(FreePlay::create(r#"{"model":{},"unknown":1}"#.into(), true).await.is_err());
}

#[wasm_bindgen_test]
async fn on_the_cpu_a_run_reports_started_steps_evals_and_finished_and_the_loss_falls() {
    let lab = FreePlay::create(config(600, 0.1), false).await.expect("valid config");
    assert!(!lab.on_gpu());
    assert!(lab.fallback_reason().unwrap().contains("not requested"));
    let (types, losses) = run_to_end(&lab).await;
    assert_eq!(types.first().map(String::as_str), Some("started"));
    assert_eq!(types.last().map(String::as_str), Some("finished"));
    // Evaluations after steps 50, 100, …, 550; the one after step 600 comes with `finished`.
    assert_eq!(types.iter().filter(|t| *t == "eval").count(), 11);
    assert_eq!(losses.len(), 600);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&losses[..25]), mean(&losses[575..]));
    assert!(last < 0.8 * first, "loss should fall by 20%: first 25 steps {first}, last 25 {last}");
    // Once done, a further step is harmless and reports nothing.
    let more = JsFuture::from(lab.step()).await.unwrap();
    assert_eq!(js_sys::Array::from(&more).length(), 0);
}

#[wasm_bindgen_test]
async fn preferring_the_gpu_either_gets_it_or_says_why_not_and_trains_anyway() {
    let lab = FreePlay::create(config(30, 0.1), true).await.expect("valid config");
    if lab.on_gpu() {
        assert!(lab.backend().starts_with("GPU"), "{}", lab.backend());
        assert!(lab.fallback_reason().is_none());
    } else {
        let why = lab.fallback_reason().expect("a CPU fallback says why");
        assert!(!why.is_empty());
    }
    let (_, losses) = run_to_end(&lab).await;
    assert_eq!(losses.len(), 30);
    assert!(losses.iter().all(|l| l.is_finite()));
}

#[wasm_bindgen_test]
async fn a_second_step_while_one_is_running_is_rejected_not_panicked_on() {
    let lab = FreePlay::create(config(30, 0.1), false).await.unwrap();
    let (a, b) = (lab.step(), lab.step());
    let (ra, rb) = (JsFuture::from(a).await, JsFuture::from(b).await);
    // The CPU finishes a chunk before the second promise starts, so both may succeed; neither may panic.
    assert!(ra.is_ok());
    if let Err(e) = rb {
        assert!(get(&e, "message").as_string().unwrap().contains("before the previous step finished"));
    }
}

// --- a real data set from bytes: FreePlay.createWithData on a tiny hand-built IDX "Fashion-MNIST" -----------

/// 784→16→10 on 40 training examples (10 with random labels), 10 held out for validation.
fn real_config(steps: usize, train_size: usize) -> String {
    format!(
        r#"{{"model":{{"input":784,"hidden":[16],"classes":10,"activation":"relu","init":"he"}},
            "dataset":{{"name":"fashion-mnist","train_size":{train_size},"validation_size":10,"random_label_fraction":0.25,"seed":1}},
            "batch_size":10,"steps":{steps},"models":[{{"lr":0.05,"seed":1}}],"eval_every":20,"chunk_steps":10}}"#
    )
}

async fn create_with(config: String, prefer_gpu: bool, files: [Vec<u8>; 4]) -> Result<FreePlay, String> {
    let [a, b, c, d] = files;
    FreePlay::create_with_data(config, prefer_gpu, a, b, c, d).await.map_err(|e| get(&JsValue::from(e), "message").as_string().unwrap())
}

/// Runs to the end; returns the events as JS objects.
async fn events_to_end(lab: &FreePlay) -> Vec<JsValue> {
    let mut all = Vec::new();
    while !lab.done() {
        let events = JsFuture::from(lab.step()).await.expect("step resolves");
        all.extend(js_sys::Array::from(&events).iter());
    }
    all
}

/// `ev[set][0][metric]` as f64 (NaN if absent).
fn metric(ev: &JsValue, set: &str, what: &str) -> f64 {
    let per_model = get(ev, set);
    if per_model.is_undefined() {
        return f64::NAN;
    }
    get(&js_sys::Array::from(&per_model).get(0), what).as_f64().unwrap_or(f64::NAN)
}

#[wasm_bindgen_test]
async fn a_real_data_set_from_idx_bytes_trains_and_reports_every_set() {
    let lab = create_with(real_config(60, 40), false, tiny_files()).await.expect("the tiny set is valid");
    let sets = lab.sets().unwrap();
    let size = |k: &str| get(&sets, k).as_f64().unwrap_or(-1.0);
    assert_eq!([size("train"), size("train_clean"), size("train_corrupted"), size("validation"), size("test")], [40.0, 30.0, 10.0, 10.0, 20.0]);
    let events = events_to_end(&lab).await;
    let ty = |ev: &JsValue| get(ev, "type").as_string().unwrap();
    let started = &events[0];
    assert_eq!(ty(started), "started");
    let name = get(started, "dataset").as_string().unwrap();
    assert_eq!(name, "fashion-mnist train (N=40, 10 random labels)");
    let mut losses = Vec::new();
    for ev in events.iter().filter(|e| ty(e) == "steps") {
        let model0 = js_sys::Array::from(&get(ev, "losses")).get(0);
        losses.extend(js_sys::Array::from(&model0).iter().map(|v| v.as_f64().unwrap()));
    }
    assert_eq!(losses.len(), 60);
    // Evaluations are plain objects with a property per set (not JS Maps): the page reads `ev.test[0]`.
    let evals: Vec<&JsValue> = events.iter().filter(|e| ty(e) == "eval").collect();
    assert_eq!(evals.len(), 2, "after steps 20 and 40; the one after step 60 comes with `finished`");
    let finished = events.last().unwrap();
    assert_eq!(ty(finished), "finished");
    for set in ["train", "train_clean", "train_corrupted", "validation", "test"] {
        for ev in [evals[0], finished] {
            let (loss, acc) = (metric(ev, set, "loss"), metric(ev, set, "accuracy"));
            assert!(loss.is_finite() && (0.0..=1.0).contains(&acc), "{set}: loss {loss}, accuracy {acc}");
        }
    }
    let (first, last) = (metric(evals[0], "train", "loss"), metric(finished, "train", "loss"));
    let start = losses[..10].iter().sum::<f64>() / 10.0;
    assert!(last < 0.8 * start && last < first, "training loss should fall: first 10 steps {start}, after 20 steps {first}, at the end {last}");
    // The lit rows make the classes easy: the clean part and the held-out sets are learnt well above chance (10%).
    for set in ["train_clean", "validation", "test"] {
        let acc = metric(finished, set, "accuracy");
        assert!(acc >= 0.5, "{set} accuracy {acc}");
    }
}

#[wasm_bindgen_test]
async fn preferring_the_gpu_a_real_data_set_trains_there_or_on_the_cpu_with_a_reason() {
    let lab = create_with(real_config(20, 40), true, tiny_files()).await.expect("the tiny set is valid");
    assert!(lab.on_gpu() || lab.fallback_reason().is_some());
    let events = events_to_end(&lab).await;
    let finished = events.last().unwrap();
    assert_eq!(get(finished, "type").as_string().unwrap(), "finished");
    for set in ["train", "train_clean", "train_corrupted", "validation", "test"] {
        assert!(metric(finished, set, "loss").is_finite(), "{set} on {}", lab.backend());
    }
}

#[wasm_bindgen_test]
async fn bad_files_and_mismatched_configs_are_refused_naming_the_file_or_field() {
    // A truncated label file: the file is named.
    let mut files = tiny_files();
    files[1].truncate(files[1].len() - 3);
    let m = create_with(real_config(10, 40), false, files).await.err().unwrap();
    assert!(m.contains("fashion-mnist/train-labels-idx1-ubyte.gz") && m.contains("truncated"), "{m}");
    // Test images and labels swapped: the images file is named, with what it expected.
    let [a, b, c, d] = tiny_files();
    let m = create_with(real_config(10, 40), false, [a, b, d, c]).await.err().unwrap();
    assert!(m.contains("fashion-mnist/t10k-images-idx3-ubyte.gz") && m.contains("magic"), "{m}");
    // Something that is not gzip or IDX at all (e.g. an HTML 404 page).
    let [_, b, c, d] = tiny_files();
    let m = create_with(real_config(10, 40), false, [b"<!doctype html>".to_vec(), b, c, d]).await.err().unwrap();
    assert!(m.contains("train-images-idx3-ubyte.gz"), "{m}");
    // More training examples than the (tiny) file holds.
    let m = create_with(real_config(10, 55), false, tiny_files()).await.err().unwrap();
    assert!(m.contains("train_size"), "{m}");
    // A synthetic config has no files to take; a real one cannot go through FreePlay.create.
    let m = create_with(config(10, 0.1), false, tiny_files()).await.err().unwrap();
    assert!(m.contains("`dataset`") && m.contains("FreePlay.create"), "{m}");
    let err = FreePlay::create(real_config(10, 40), false).await.err().unwrap();
    let m = get(&JsValue::from(err), "message").as_string().unwrap();
    assert!(m.contains("`dataset`") && m.contains("FreePlay.createWithData"), "{m}");
}

/// A 2→8→2 tanh net recording its Hessian every 10 steps; then `FreePlay.sharpness` at the end, on the CPU and
/// (where WebGPU gives an adapter) the GPU.
#[wasm_bindgen_test]
async fn sharpness_events_during_training_and_lab_sharpness_report_lambda_max_and_trace_per_model() {
    let cfg = r#"{"model":{"input":2,"hidden":[8],"classes":2,"activation":"tanh","init":"xavier"},
        "data":{"kind":"two_spirals","n":64,"noise":0.1,"seed":1},"batch_size":16,"steps":20,"chunk_steps":25,
        "models":[{"lr":0.1,"momentum":0.9,"seed":1},{"lr":0.05,"seed":2}],
        "sharpness":{"every":10,"examples":50,"iterations":5}}"#;
    for prefer_gpu in [false, true] {
        let lab = FreePlay::create(cfg.into(), prefer_gpu).await.expect("valid config");
        let mut seen = Vec::new();
        while !lab.done() {
            let events = JsFuture::from(lab.step()).await.expect("step resolves");
            for ev in js_sys::Array::from(&events).iter() {
                if get(&ev, "type").as_string().unwrap() == "sharpness" {
                    seen.push(get(&ev, "step").as_f64().unwrap());
                    assert_eq!(js_sys::Array::from(&get(&ev, "lambda_max")).length(), 2);
                    assert!(get(&ev, "trace").is_undefined());
                }
            }
        }
        assert_eq!(seen, vec![10.0, 20.0], "backend {}", lab.backend());
        let h = JsFuture::from(lab.sharpness(50, Some(8))).await.expect("sharpness resolves");
        let nums = |key: &str| -> Vec<f64> { js_sys::Array::from(&get(&h, key)).iter().map(|v| v.as_f64().unwrap()).collect() };
        let (lmax, tr, se, edge) = (nums("lambda_max"), nums("trace"), nums("trace_std_error"), nums("stability_threshold"));
        assert_eq!((lmax.len(), tr.len(), se.len()), (2, 2, 2));
        for m in 0..2 {
            assert!(lmax[m].is_finite() && lmax[m] > 0.0 && tr[m].is_finite() && se[m] >= 0.0, "{lmax:?} {tr:?} {se:?}");
        }
        assert!((edge[0] - 38.0).abs() < 1e-3 && (edge[1] - 40.0).abs() < 1e-3, "{edge:?}");
        assert_eq!(get(&h, "examples").as_f64(), Some(50.0));
    }
}

/// A tiny spirals run (2→8→2, 64 points, 40 steps) on the CPU, deterministic.
fn tiny_config() -> String {
    r#"{"model":{"input":2,"hidden":[8],"classes":2,"activation":"tanh","init":"xavier"},
        "data":{"kind":"two_spirals","n":64,"noise":0.1,"seed":1},
        "batch_size":8,"steps":40,"models":[{"lr":0.3,"seed":1},{"lr":0.1,"seed":2}],
        "eval_every":0,"chunk_steps":10}"#
        .into()
}

/// `[alpha, loss, accuracy]` of an `Interpolation`.
async fn interpolation(lab: &FreePlay, points: usize, model: Option<usize>) -> Result<[Vec<f64>; 3], String> {
    let v = JsFuture::from(lab.interpolate_from_init(points, model)).await.map_err(|e| get(&e, "message").as_string().unwrap())?;
    let col = |k: &str| js_sys::Array::from(&get(&v, k)).iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    Ok([col("alpha"), col("loss"), col("accuracy")])
}

#[wasm_bindgen_test]
async fn epsilon_sharpness_is_reported_per_model_and_bad_arguments_are_refused() {
    let lab = FreePlay::create(tiny_config(), false).await.unwrap();
    events_to_end(&lab).await;
    let r = JsFuture::from(lab.epsilon_sharpness(40, None, Some(5))).await.expect("epsilonSharpness resolves");
    let models = js_sys::Array::from(&r);
    assert_eq!(models.length(), 2);
    for m in models.iter() {
        let (s, loss, max_loss) = (get(&m, "sharpness").as_f64().unwrap(), get(&m, "loss").as_f64().unwrap(), get(&m, "max_loss").as_f64().unwrap());
        assert!(s.is_finite() && s >= 0.0 && max_loss >= loss, "sharpness {s}, loss {loss} → {max_loss}");
        assert!((s - 100.0 * (max_loss - loss) / (1.0 + loss)).abs() < 1e-9 * (1.0 + s));
    }
    let err = JsFuture::from(lab.epsilon_sharpness(40, Some(-1.0), None)).await.unwrap_err();
    assert!(get(&err, "message").as_string().unwrap().contains("epsilon"));
}

#[wasm_bindgen_test]
async fn interpolation_from_init_starts_at_the_initial_loss_and_ends_at_the_final_loss() {
    let lab = FreePlay::create(tiny_config(), false).await.unwrap();
    // before any step θ = θ₀: every point is the initial model
    let [alpha, before, _] = interpolation(&lab, 25, Some(1)).await.unwrap();
    assert_eq!(alpha.len(), 25);
    assert_eq!((alpha[0], alpha[6], alpha[18], alpha[24]), (-0.5, 0.0, 1.0, 1.5));
    let initial = before[6];
    assert_eq!(before[18], initial);
    let mut finished = None;
    while !lab.done() {
        for ev in js_sys::Array::from(&JsFuture::from(lab.step()).await.unwrap()).iter() {
            if get(&ev, "type").as_string().unwrap() == "finished" {
                let m1 = js_sys::Array::from(&get(&ev, "train")).get(1);
                finished = Some(get(&m1, "loss").as_f64().unwrap());
            }
        }
    }
    let final_loss = finished.expect("a finished event");
    let [_, loss, accuracy] = interpolation(&lab, 25, Some(1)).await.unwrap();
    assert_eq!(loss[6], initial, "α = 0 is the initial model");
    assert_eq!(loss[18], final_loss, "α = 1 is the final model");
    assert!(final_loss < initial, "training lowered the loss: {initial} → {final_loss}");
    assert!(accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
    // the interpolation before training put the parameters back: the same run without it ends identically
    let plain = FreePlay::create(tiny_config(), false).await.unwrap();
    let ev = events_to_end(&plain).await;
    let last = ev.last().unwrap();
    let m1 = js_sys::Array::from(&get(last, "train")).get(1);
    assert_eq!(get(&m1, "loss").as_f64().unwrap(), final_loss);
    // bad arguments are refused, not panicked on
    assert!(interpolation(&lab, 1, None).await.unwrap_err().contains("points"));
    assert!(interpolation(&lab, 25, Some(2)).await.unwrap_err().contains("model 2"));
}

/// `FreePlay.landscape2d` on the tiny run (CPU, 7 × 7 grid): the PCA plane of the kept snapshots, the centre is
/// the trained model, the trajectory ends at (0, 0), training goes on afterwards, and bad options are named.
#[wasm_bindgen_test]
async fn landscape2d_centres_on_the_trained_model_and_names_bad_options() {
    let lab = FreePlay::create(tiny_config(), false).await.unwrap();
    lab.keep_snapshots(10, Some(64)).unwrap();
    events_to_end(&lab).await; // 40 steps in chunks of 10: snapshots at 0, 10, 20, 30, 40
    let opts = js_sys::JSON::parse(r#"{"grid": 7, "model": 1}"#).unwrap();
    let l = JsFuture::from(lab.landscape2d(opts)).await.expect("landscape2d resolves");
    let nums = |v: &JsValue| js_sys::Array::from(v).iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    let (xs, loss) = (nums(&get(&l, "xs")), nums(&get(&l, "loss")));
    assert_eq!((xs.len(), loss.len(), xs[3]), (7, 49, 0.0));
    let [_, interp, _] = interpolation(&lab, 25, Some(1)).await.unwrap(); // α = 1 is the trained model
    assert!((loss[3 * 7 + 3] - interp[18]).abs() < 1e-5, "centre {} vs trained {}", loss[24], interp[18]);
    let traj = js_sys::Array::from(&get(&l, "trajectory"));
    assert_eq!(traj.length(), 5);
    assert_eq!(nums(&traj.get(4)), vec![0.0, 0.0]);
    assert!(get(&l, "svg").as_string().unwrap().contains("<polyline"));
    assert!(get(&get(&l, "plot_box"), "width").as_f64().unwrap() > 100.0);
    for (json, named) in [(r#"{"grid": 2}"#, "grid"), (r#"{"directions": "sideways"}"#, "directions"), (r#"{"model": 9}"#, "model")] {
        let e = JsFuture::from(lab.landscape2d(js_sys::JSON::parse(json).unwrap())).await.unwrap_err();
        let message = get(&e, "message").as_string().unwrap();
        assert!(message.contains(named), "{json}: {message}");
    }
}
