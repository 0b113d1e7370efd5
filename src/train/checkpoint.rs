//! A [`TrainerState`]: everything the next SGD step of a [`Trainer`](super::Trainer) depends on, so a run
//! stopped between two chunks resumes to the same bits as one that never stopped (on the CPU backend; on
//! one GPU device too, whose reductions are fixed-order).
//!
//! Why a file of its own: the experiments runner (`sgd-lab run`) writes one every few seconds inside a
//! group of models, and a group on the paper's scale takes minutes — a kill used to lose all of it.
//!
//! The bytes are a safetensors file: tensors `params` and `velocity` (f32 `[K, P]`) and `perms` (u32
//! `[K, N]`, the sampler's permutations), and metadata `format` ([`FORMAT`]), `version` ([`VERSION`]),
//! `state` (JSON: the training config, step counters, divergence flags, generator positions, cursors),
//! `annex` (the caller's own JSON, e.g. the runner's results in progress) and `crc32` (of `state`, `annex`
//! and the three tensors' bytes), so a truncated or damaged file is refused with the reason.
//!
//! Values are f32: exact for the f32 backends (the CPU `CpuBackend<f32>` the experiments use, and the GPU);
//! a `CpuBackend<f64>` reference run would resume from its parameters and momentum rounded to f32.

use std::collections::HashMap;

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::sampler::SamplerState;
use super::TrainConfig;
use crate::backend::OptimizerState;
use crate::error::{LabError, Result};

/// The `format` metadata of a checkpoint.
pub const FORMAT: &str = "sgd-lab trainer state";
/// The `version` metadata this build writes and reads.
pub const VERSION: u32 = 1;

/// Everything a [`Trainer`](super::Trainer) needs to take the next step as if it had never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// The training config it belongs to (a state is refused by a trainer of any other config).
    pub config: TrainConfig,
    /// Steps done.
    pub step: usize,
    /// Schedule stage of the next step.
    pub stage: usize,
    /// Training examples each model has seen.
    pub examples_seen: u64,
    /// The schedule stage whose learning rates the backend holds.
    pub hyper_stage: usize,
    /// `K × P` parameters.
    pub params: Vec<f32>,
    /// Momentum buffers, divergence flags and the backend's step count.
    pub optimizer: OptimizerState,
    /// The mini-batch streams.
    pub sampler: SamplerState,
}

/// The `state` metadata: the scalars of a [`TrainerState`] (the large arrays are tensors).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    config: TrainConfig,
    step: usize,
    stage: usize,
    examples_seen: u64,
    hyper_stage: usize,
    backend_step: u32,
    diverged_at: Vec<Option<u32>>,
    /// Decimal strings: a u128 is beyond what every JSON reader takes as a number.
    word_pos: Vec<String>,
    cursor: Vec<usize>,
}

fn bad(what: impl std::fmt::Display) -> LabError {
    LabError::Io(format!("not a usable checkpoint: {what}"))
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

fn checksum(state: &str, annex: &str, tensors: [&[u8]; 3]) -> String {
    let mut h = crc32fast::Hasher::new();
    for part in [state.as_bytes(), annex.as_bytes()].into_iter().chain(tensors) {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    format!("{:08x}", h.finalize())
}

impl TrainerState {
    /// Serialises the state, with `annex` (any text, e.g. the caller's JSON) stored alongside and covered
    /// by the checksum.
    pub fn to_bytes(&self, annex: &str) -> Result<Vec<u8>> {
        let k = self.config.models.len();
        let p = self.config.model.layout().params_per_model;
        let n = self.sampler.perms.first().map_or(0, Vec::len);
        if self.params.len() != k * p || self.optimizer.velocity.len() != k * p || self.sampler.perms.len() != k || self.sampler.perms.iter().any(|q| q.len() != n) {
            return Err(LabError::Backend(format!("a trainer state of {k} models × {p} parameters has arrays of other sizes")));
        }
        let header = Header {
            config: self.config.clone(),
            step: self.step,
            stage: self.stage,
            examples_seen: self.examples_seen,
            hyper_stage: self.hyper_stage,
            backend_step: self.optimizer.step,
            diverged_at: self.optimizer.diverged_at.clone(),
            word_pos: self.sampler.word_pos.iter().map(u128::to_string).collect(),
            cursor: self.sampler.cursor.clone(),
        };
        let state = serde_json::to_string(&header).expect("the state serialises");
        let params = le_bytes(&self.params, f32::to_le_bytes);
        let velocity = le_bytes(&self.optimizer.velocity, f32::to_le_bytes);
        let perms = le_bytes(&self.sampler.perms.concat(), u32::to_le_bytes);
        let crc = checksum(&state, annex, [&params, &velocity, &perms]);
        let st = |e: ::safetensors::SafeTensorError| LabError::Backend(format!("safetensors: {e}"));
        let views = [
            ("params", TensorView::new(Dtype::F32, vec![k, p], &params).map_err(st)?),
            ("velocity", TensorView::new(Dtype::F32, vec![k, p], &velocity).map_err(st)?),
            ("perms", TensorView::new(Dtype::U32, vec![k, n], &perms).map_err(st)?),
        ];
        let meta: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("version", VERSION.to_string()),
            ("state", state),
            ("annex", annex.to_string()),
            ("crc32", crc),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .collect();
        ::safetensors::tensor::serialize(views, Some(meta)).map_err(st)
    }

    /// Reads bytes written by [`TrainerState::to_bytes`]: the state and its annex. Every refusal (not a
    /// checkpoint, another version, truncated, a checksum mismatch, inconsistent sizes) says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<(TrainerState, String)> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format_args!("{e} (truncated or damaged?)")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format_args!("{e} (truncated or damaged?)")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |key: &str| meta.get(key).ok_or_else(|| bad(format_args!("no `{key}` metadata (not written by sgd-lab's checkpoints?)")));
        if get("format")? != FORMAT {
            return Err(bad(format_args!("its format is {:?}, expected {FORMAT:?}", get("format")?)));
        }
        if get("version")? != &VERSION.to_string() {
            return Err(bad(format_args!("it is of version {}, this build reads version {VERSION}", get("version")?)));
        }
        let tensor = |name: &str, dtype: Dtype| {
            let t = st.tensor(name).map_err(|e| bad(format_args!("tensor `{name}`: {e}")))?;
            if t.dtype() != dtype || t.shape().len() != 2 {
                return Err(bad(format_args!("tensor `{name}` is {:?} of shape {:?}, expected {dtype:?} of 2 dimensions", t.dtype(), t.shape())));
            }
            Ok(t)
        };
        let (params, velocity, perms) = (tensor("params", Dtype::F32)?, tensor("velocity", Dtype::F32)?, tensor("perms", Dtype::U32)?);
        let (state, annex) = (get("state")?, get("annex")?);
        if checksum(state, annex, [params.data(), velocity.data(), perms.data()]) != *get("crc32")? {
            return Err(bad("its checksum does not match its contents (the file was damaged)"));
        }
        let h: Header = serde_json::from_str(state).map_err(|e| bad(format_args!("`state` metadata: {e}")))?;
        let k = h.config.models.len();
        let p = h.config.model.layout().params_per_model;
        if params.shape() != [k, p] || velocity.shape() != [k, p] || perms.shape()[0] != k || h.diverged_at.len() != k || h.word_pos.len() != k || h.cursor.len() != k {
            return Err(bad(format_args!("its arrays do not fit its config's {k} models × {p} parameters")));
        }
        let f32s = |d: &[u8]| d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>();
        let n = perms.shape()[1];
        let flat: Vec<u32> = perms.data().chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let word_pos = h.word_pos.iter().map(|w| w.parse::<u128>().map_err(|e| bad(format_args!("generator position {w:?}: {e}")))).collect::<Result<_>>()?;
        let state = TrainerState {
            step: h.step,
            stage: h.stage,
            examples_seen: h.examples_seen,
            hyper_stage: h.hyper_stage,
            params: f32s(params.data()),
            optimizer: OptimizerState { velocity: f32s(velocity.data()), diverged_at: h.diverged_at, step: h.backend_step },
            sampler: SamplerState { word_pos, perms: if n == 0 { vec![Vec::new(); k] } else { flat.chunks(n).map(<[u32]>::to_vec).collect() }, cursor: h.cursor },
            config: h.config,
        };
        Ok((state, annex.clone()))
    }
}
