//! The JavaScript faces of the lab (wasm-bindgen, wasm32 only): thin and typed, each parses what the page
//! gives it, obtains an engine (WebGPU if an adapter is really obtained, else the CPU) and hands results back
//! as plain objects. Every fallible call returns (or rejects with) a `JsError` whose message names the field,
//! file or data set at fault; nothing panics across the boundary.
//!
//! - [`free_play`] — `FreePlay.create`, `FreePlay.createWithData`: one training run of K models, stepped a chunk
//!   at a time, with its curvature, interpolation and 2-D landscape (the page's free play).
//! - [`experiments`] — `presets()`, `Experiment.create`, `.fromPreset`, `.resume`: the paper's experiments, a plan
//!   of jobs run a piece of work at a time, with their results and claims report (the lab).
//! - [`bench`](mod@bench) — `BenchRun.create`: the benchmarks' units of work (a training chunk, an evaluation, a
//!   λ_max), timed by the caller (the benchmarks page).
//!
//! What the faces share lives once in `engine.rs`: the engine a face trains on (the `backend`, `onGpu` and
//! `fallbackReason` getters), the conversions to JavaScript (errors, objects, promises), the data of a run on
//! a real data set, and the module's start (the panic hook) and `version()`.
//!
//! ```js
//! import init, { version, FreePlay, presets, Experiment, BenchRun } from "./pkg/sgd_lab.js";
//! await init();   // runs the start function: Rust panics reach the console readably
//! ```
//!
//! Re-entrancy: JavaScript may call a method again while an earlier call's promise is pending. Each face
//! refuses that with a clear error instead of interleaving two pieces of work: `FreePlay` and `BenchRun` hold
//! their state's `RefCell` borrow across the awaits of a call on purpose (a second call's `try_borrow_mut`
//! fails), and `Experiment` takes its run out of a `Cell` while a step is pending (a second step finds none).
//! Hence clippy's `await_holding_refcell_ref` is allowed in those two modules, and only there.

#[allow(clippy::await_holding_refcell_ref)] // the held borrow is the re-entrancy guard (above)
pub mod bench;
mod engine;
pub mod experiments;
#[allow(clippy::await_holding_refcell_ref)] // the held borrow is the re-entrancy guard (above)
pub mod free_play;

pub use bench::BenchRun;
pub use engine::version;
pub use experiments::{presets, Experiment};
pub use free_play::FreePlay;
