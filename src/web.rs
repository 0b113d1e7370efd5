//! The JavaScript face of the lab (wasm-bindgen). Thin and typed: it parses a config, picks a backend
//! (WebGPU if an adapter is really obtained, else the CPU), and hands training events to the page.
//! Every fallible call returns `Result<_, JsError>`; nothing panics across the boundary.
//!
//! ```js
//! import init, { Lab } from "./pkg/sgd_lab.js";
//! await init();
//! const lab = await Lab.create(JSON.stringify(config), /* preferGpu */ true);
//! console.log(lab.backend, lab.onGpu, lab.fallbackReason);
//! while (!lab.done) {
//!   for (const ev of await lab.step()) { /* ev.type: started | steps | eval | diverged | finished */ }
//!   await new Promise(requestAnimationFrame); // let the page breathe between chunks
//! }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::backend::any::{make_backend, AnyBackend, BackendChoice};
use crate::backend::Backend;
use crate::train::{TrainConfig, Trainer};

#[wasm_bindgen(typescript_custom_section)]
const TS_EVENTS: &str = r#"
/** Metrics of one model over the training set. */
export interface EvalMetrics { loss: number; accuracy: number }
/** What `Lab.step()` resolves to: the events of one training chunk, in order. */
export type LabEvent =
  | { type: "started"; models: number; steps: number; batch_size: number; params_per_model: number;
      backend: string; dataset: string; examples: number }
  | { type: "steps"; first_step: number; losses: number[][] /* [model][step], NaN once diverged */ }
  | { type: "eval"; step: number; train: EvalMetrics[] /* [model] */ }
  | { type: "diverged"; model: number; step: number }
  | { type: "finished"; steps: number; train: EvalMetrics[] /* [model] */ };
"#;

/// Runs once when the module is instantiated: Rust panics then reach the browser console readably.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate's version, for the page's footer and for bug reports.
#[wasm_bindgen(js_name = version)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// One training run of K models, driven a chunk at a time from JavaScript.
#[wasm_bindgen]
pub struct Lab {
    trainer: Rc<RefCell<Trainer<AnyBackend>>>,
    backend: String,
    on_gpu: bool,
    fallback_reason: Option<String>,
}

#[wasm_bindgen]
impl Lab {
    /// Parses and validates `configJson`, picks a backend (the GPU only if `preferGpu` and WebGPU really
    /// gives an adapter) and prepares the models. Rejects with a message naming the offending field.
    pub async fn create(
        #[wasm_bindgen(js_name = configJson)] config_json: String,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
    ) -> Result<Lab, JsError> {
        let config = TrainConfig::from_json(&config_json).map_err(to_js)?;
        let choice = if prefer_gpu { BackendChoice::Auto } else { BackendChoice::Cpu };
        let (backend, why_cpu) = make_backend(&config.model.layout(), config.models.len(), config.batch_size, choice)
            .await
            .map_err(to_js)?;
        let on_gpu = matches!(backend, AnyBackend::Gpu(_));
        let fallback_reason = match (on_gpu, why_cpu) {
            (true, _) => None,
            (false, Some(why)) => Some(why),
            (false, None) => Some("the GPU was not requested".to_string()),
        };
        let description = backend.describe();
        let trainer = Trainer::new(config, backend).map_err(to_js)?;
        Ok(Lab { trainer: Rc::new(RefCell::new(trainer)), backend: description, on_gpu, fallback_reason })
    }

    /// What trains the models, e.g. `"GPU: SwiftShader Device (WebGPU)"` or `"CPU (f32)"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// True when the models train on the GPU.
    #[wasm_bindgen(getter, js_name = onGpu)]
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// Why the CPU is used (no WebGPU, no adapter, not requested, ...); `undefined` on the GPU.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// True once every step has run.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.trainer.try_borrow().map(|t| t.is_done()).unwrap_or(false)
    }

    /// Runs one chunk of steps (one GPU readback) and resolves to its events (`LabEvent[]`).
    /// Rejects if a previous `step()` has not finished yet.
    #[wasm_bindgen(unchecked_return_type = "Promise<LabEvent[]>")]
    pub fn step(&self) -> js_sys::Promise {
        let trainer = Rc::clone(&self.trainer);
        wasm_bindgen_futures::future_to_promise(async move {
            let mut t = trainer
                .try_borrow_mut()
                .map_err(|_| JsValue::from(JsError::new("Lab.step() called again before the previous step finished")))?;
            let events = t.run_chunk().await.map_err(|e| JsValue::from(to_js(e)))?;
            serde_wasm_bindgen::to_value(&events).map_err(|e| JsValue::from(JsError::new(&e.to_string())))
        })
    }
}

fn to_js(e: crate::LabError) -> JsError {
    JsError::new(&e.to_string())
}
