//! # sgd-lab
//!
//! A laboratory that reproduces *Three Factors Influencing Minima in SGD* (Jastrzębski et al., 2017).
//! Its engine trains a batch of K same-shaped MLPs side by side — on the GPU through WGSL compute
//! shaders (wgpu/WebGPU) or on the CPU reference backend — and everything else in the lab (sweeps,
//! Hessians, landscapes) is built from that one idea.
//!
//! Data flows one way: config → [`train`] → [`backend`] → kernels; events flow back up.
//! See `docs/ARCHITECTURE.md` for the map of the code.
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
