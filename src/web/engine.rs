//! What the faces share, written once: the engine a face trains on ([`Engine`], behind each class's
//! `backend`, `onGpu` and `fallbackReason` getters), Rust values as JavaScript objects, work as a promise, the
//! data of a run on a real data set, and the module's start (the panic hook) and [`version`].
//!
//! Errors: a [`LabError`] — like any `std::error::Error`, `serde_wasm_bindgen`'s included — becomes a
//! `JsError` with the same message through `?` (wasm-bindgen's `From<E: Error> for JsError`), so no face
//! converts errors by hand; a face writes `JsError::new` only for its own messages (e.g. a re-entrant call).

use std::future::Future;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::backend::any::{AnyBackend, BackendChoice, BackendFactory};
use crate::backend::Backend;
use crate::data::prepare::prepare;
use crate::data::{DatasetConfig, RawData};
use crate::error::LabError;
use crate::train::RunData;

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

/// The engine a face's models train on, as its getters report it.
pub(crate) struct Engine {
    /// What trains the models, e.g. `"GPU: SwiftShader Device (WebGPU)"` or `"CPU (f32)"`.
    pub(crate) description: String,
    /// True on the GPU.
    pub(crate) on_gpu: bool,
    /// Why the CPU is used; `None` on the GPU.
    pub(crate) fallback_reason: Option<String>,
}

impl Engine {
    /// The GPU when the page prefers it (and WebGPU really gives an adapter: [`BackendChoice::Auto`]), else the CPU.
    pub(crate) fn choice(prefer_gpu: bool) -> BackendChoice {
        if prefer_gpu {
            BackendChoice::Auto
        } else {
            BackendChoice::Cpu
        }
    }

    /// The engine of a backend from [`crate::backend::any::make_backend`], with the reason it gave for the CPU.
    pub(crate) fn of_backend(backend: &AnyBackend, why_cpu: Option<String>) -> Engine {
        Engine::new(backend.describe(), matches!(backend, AnyBackend::Gpu(_)), why_cpu.as_deref())
    }

    /// The engine of a factory obtained with [`Engine::choice`]`(prefer_gpu)`.
    pub(crate) fn of_factory(factory: &BackendFactory, prefer_gpu: bool) -> Engine {
        Engine::new(factory.describe(), prefer_gpu && factory.fallback_reason().is_none(), factory.fallback_reason())
    }

    /// Off the GPU without a reason from the backend, the GPU was not asked for.
    fn new(description: String, on_gpu: bool, why_cpu: Option<&str>) -> Engine {
        let fallback_reason = (!on_gpu).then(|| why_cpu.unwrap_or("the GPU was not requested").to_string());
        Engine { description, on_gpu, fallback_reason }
    }
}

/// The getters `backend`, `onGpu` and `fallbackReason` of a face class whose `engine` field is an [`Engine`].
macro_rules! engine_getters {
    ($class:ident) => {
        #[wasm_bindgen::prelude::wasm_bindgen]
        impl $class {
            /// What trains the models, e.g. `"GPU: SwiftShader Device (WebGPU)"` or `"CPU (f32)"`.
            #[wasm_bindgen(getter)]
            pub fn backend(&self) -> String {
                self.engine.description.clone()
            }

            /// True when the models train on the GPU.
            #[wasm_bindgen(getter, js_name = onGpu)]
            pub fn on_gpu(&self) -> bool {
                self.engine.on_gpu
            }

            /// Why the CPU is used (no WebGPU, no adapter, not requested, ...); `undefined` on the GPU.
            #[wasm_bindgen(getter, js_name = fallbackReason)]
            pub fn fallback_reason(&self) -> Option<String> {
                self.engine.fallback_reason.clone()
            }
        }
    };
}
pub(crate) use engine_getters;

/// A Rust value as JavaScript, maps (which a `#[serde(flatten)]` struct is to serde) as plain objects rather
/// than `Map`s, and a `None` that is not skipped as `undefined`: what `FreePlay` resolves to.
pub(crate) fn to_object<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))?)
}

/// A Rust value as `JSON.parse` would give it: plain objects, and `null` for a `None` that is not skipped (what
/// `Experiment` returns, so that its results read the same as their saved JSON).
pub(crate) fn to_json_value<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// The promise of `work`, rejected with its `JsError`.
pub(crate) fn promise(work: impl Future<Output = Result<JsValue, JsError>> + 'static) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move { work.await.map_err(JsValue::from) })
}

/// The data of a run on a real `dataset` from its parsed files: the training subset, validation split and
/// random labels `dataset` asks for (`docs/data.md`). `FreePlay` prepares one run's; an `Experiment`'s jobs
/// each prepare their own from one parsed set.
pub(crate) fn run_data_from_raw(raw: &RawData, dataset: &DatasetConfig) -> Result<RunData, LabError> {
    RunData::from_prepared(prepare(raw, &dataset.options(&raw.shape()))?)
}
