//! Analyses built on batches of models: loss landscapes ([`landscape`]): interpolations between two
//! parameter sets and 1-D / 2-D slices along filter-normalised random directions.

pub mod landscape;
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;
#[cfg(not(target_arch = "wasm32"))]
pub mod run;
