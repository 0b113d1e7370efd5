//! Browser tests of the JavaScript face (`sgd_lab::web::Lab`), run inside Chromium by
//! `wasm-pack test --headless --chrome` (webdriver.json turns WebGPU on; see scripts/test).
#![cfg(target_arch = "wasm32")]

use sgd_lab::web::Lab;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The page's demo (www/presets.js): a 2→64→64→2 ReLU MLP on 512 spiral points, batch 32, chunks of 25
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

/// Reads `obj[key]` (a JS property) as a JsValue.
fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).expect("property access")
}

/// Runs `lab` to the end; returns (event types in order, every step's loss of model 0).
async fn run_to_end(lab: &Lab) -> (Vec<String>, Vec<f64>) {
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
    let err = Lab::create(config(40, -1.0), false).await.err().expect("a negative learning rate is refused");
    let message = get(&JsValue::from(err), "message").as_string().unwrap();
    assert!(message.contains("models[0].lr"), "{message}");
}

#[wasm_bindgen_test]
async fn malformed_json_is_refused_not_panicked_on() {
    assert!(Lab::create("{ not json".into(), false).await.is_err());
    assert!(Lab::create(r#"{"model":{},"unknown":1}"#.into(), true).await.is_err());
}

#[wasm_bindgen_test]
async fn on_the_cpu_a_run_reports_started_steps_evals_and_finished_and_the_loss_falls() {
    let lab = Lab::create(config(600, 0.1), false).await.expect("valid config");
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
    let lab = Lab::create(config(30, 0.1), true).await.expect("valid config");
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
    let lab = Lab::create(config(30, 0.1), false).await.unwrap();
    let (a, b) = (lab.step(), lab.step());
    let (ra, rb) = (JsFuture::from(a).await, JsFuture::from(b).await);
    // The CPU finishes a chunk before the second promise starts, so both may succeed; neither may panic.
    assert!(ra.is_ok());
    if let Err(e) = rb {
        assert!(get(&e, "message").as_string().unwrap().contains("before the previous step finished"));
    }
}
