//! # sgd-lab
//!
//! A laboratory that reproduces *Three Factors Influencing Minima in SGD* (Jastrzębski et al., 2017).
//! Its engine trains a batch of K same-shaped MLPs side by side — on the GPU through WGSL compute
//! shaders (wgpu/WebGPU) or on the CPU reference backend — and everything else in the lab (sweeps,
//! Hessians, landscapes) is built from that one idea.
//!
//! Layers, each using only those below it: [`error`], [`model`], [`data`] (core) → [`backend`] (every
//! capability trait with its CPU and GPU halves) → [`analysis`] (curvature, noise, landscapes over any backend)
//! → [`train`] → [`experiments`] → the faces, `cli` (native) and `web` (wasm32). Data flows down
//! (config → experiments → train/analysis → backend → kernels); events flow back up.
//! See `docs/ARCHITECTURE.md` for the map of the code, one line per module.
#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod data;
pub mod error;
pub mod experiments;
pub mod model;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::LabError;
