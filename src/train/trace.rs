//! A training run's trace: initial and final parameters as safetensors, and the exact mini-batch
//! indices of every step, so any run can be replayed elsewhere (PyTorch, JAX, or this lab).
//!
//! Parameter files hold one tensor per layer and kind, stacked over the K models:
//! `layers.{l}.weight` with shape `[K, out, in]` and `layers.{l}.bias` with shape `[K, out]` (f32),
//! plus metadata `layout` (JSON of [`Layout`]) and, when known, `config` (the run's JSON).
//! The batch file holds `indices`, u32 of shape `[steps, K, B]`.
//! A trajectory file (`sgd-lab train --snapshot-every N`) holds `params`, f32 of shape `[S, K, P]` (S
//! snapshots of the K models, each in the flat layout of [`Layout`]: per layer W row-major `[out][in]`,
//! then b), `steps`, i64 of shape `[S]` (steps done at each snapshot), and the `layout` metadata.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{LabError, Result};
use crate::model::Layout;

/// Serialises K models' parameters (`K × P`, the flat layout) to safetensors bytes.
pub fn params_to_safetensors(layout: &Layout, params: &[f32], config_json: Option<&str>) -> Result<Vec<u8>> {
    let p = layout.params_per_model;
    if p == 0 || params.len() % p != 0 {
        return Err(LabError::Backend(format!("{} values is not a whole number of models of {p} parameters", params.len())));
    }
    let k = params.len() / p;
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (l, lo) in layout.layers.iter().enumerate() {
        let mut w = Vec::with_capacity(k * lo.fan_in * lo.fan_out * 4);
        let mut b = Vec::with_capacity(k * lo.fan_out * 4);
        for m in 0..k {
            let base = m * p;
            for v in &params[base + lo.w..base + lo.w + lo.fan_in * lo.fan_out] {
                w.extend_from_slice(&v.to_le_bytes());
            }
            for v in &params[base + lo.b..base + lo.b + lo.fan_out] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        blobs.push((format!("layers.{l}.weight"), vec![k, lo.fan_out, lo.fan_in], w));
        blobs.push((format!("layers.{l}.bias"), vec![k, lo.fan_out], b));
    }
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).map_err(st_err)?)))
        .collect::<Result<_>>()?;
    let mut meta = HashMap::new();
    meta.insert("layout".to_string(), serde_json::to_string(layout).expect("layout serialises"));
    if let Some(c) = config_json {
        meta.insert("config".to_string(), c.to_string());
    }
    safetensors::tensor::serialize(views, Some(meta)).map_err(st_err)
}

/// Reads parameters written by [`params_to_safetensors`]: the layout and the flat `K × P` values.
pub fn params_from_safetensors(bytes: &[u8]) -> Result<(Layout, Vec<f32>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
    let layout_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("layout"))
        .ok_or_else(|| LabError::Io("safetensors file has no `layout` metadata: was it written by sgd-lab?".into()))?;
    let layout: Layout = serde_json::from_str(layout_json).map_err(|e| LabError::Io(format!("bad `layout` metadata: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let p = layout.params_per_model;
    let mut k = None;
    let mut out = Vec::new();
    for (l, lo) in layout.layers.iter().enumerate() {
        for (name, len, off) in [
            (format!("layers.{l}.weight"), lo.fan_in * lo.fan_out, lo.w),
            (format!("layers.{l}.bias"), lo.fan_out, lo.b),
        ] {
            let t = st.tensor(&name).map_err(|e| LabError::Io(format!("tensor `{name}`: {e}")))?;
            if t.dtype() != Dtype::F32 {
                return Err(LabError::Io(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
            }
            let kt = t.shape().first().copied().unwrap_or(0);
            let k = *k.get_or_insert_with(|| {
                out = vec![0f32; kt * p];
                kt
            });
            if t.shape().iter().product::<usize>() != k * len || kt != k {
                return Err(LabError::Io(format!("tensor `{name}` has shape {:?}, expected {k} models × {len} values", t.shape())));
            }
            for (i, c) in t.data().chunks_exact(4).enumerate() {
                let (m, j) = (i / len, i % len);
                out[m * p + off + j] = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
    Ok((layout, out))
}

/// Serialises the mini-batch indices `[steps][K][B]` to safetensors bytes (tensor `indices`, u32).
pub fn batches_to_safetensors(indices: &[u32], k: usize, batch: usize) -> Result<Vec<u8>> {
    if k == 0 || batch == 0 || indices.len() % (k * batch) != 0 {
        return Err(LabError::Backend(format!("{} indices is not whole steps of {k}×{batch}", indices.len())));
    }
    let steps = indices.len() / (k * batch);
    let bytes: Vec<u8> = indices.iter().flat_map(|i| i.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::U32, vec![steps, k, batch], &bytes).map_err(st_err)?;
    safetensors::tensor::serialize([("indices", view)], None).map_err(st_err)
}

/// Serialises the indices of a run whose batch size changes (a batch-size schedule): `indices`, u32 of
/// shape `[Σ_t K·B_t]` (step after step, model after model), and `batch_sizes`, u32 of shape `[steps]`.
pub fn scheduled_batches_to_safetensors(indices: &[u32], k: usize, batch_sizes: &[u32]) -> Result<Vec<u8>> {
    let total: usize = batch_sizes.iter().map(|&b| b as usize * k).sum();
    if k == 0 || total != indices.len() {
        return Err(LabError::Backend(format!("{} indices do not match {} steps of {k} models with the given batch sizes ({total})", indices.len(), batch_sizes.len())));
    }
    let idx: Vec<u8> = indices.iter().flat_map(|i| i.to_le_bytes()).collect();
    let bs: Vec<u8> = batch_sizes.iter().flat_map(|i| i.to_le_bytes()).collect();
    let a = TensorView::new(Dtype::U32, vec![indices.len()], &idx).map_err(st_err)?;
    let b = TensorView::new(Dtype::U32, vec![batch_sizes.len()], &bs).map_err(st_err)?;
    safetensors::tensor::serialize([("indices", a), ("batch_sizes", b)], None).map_err(st_err)
}

/// Reads the indices written by [`batches_to_safetensors`]: `(indices, [steps, K, B])`.
pub fn batches_from_safetensors(bytes: &[u8]) -> Result<(Vec<u32>, [usize; 3])> {
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let t = st.tensor("indices").map_err(|e| LabError::Io(format!("tensor `indices`: {e}")))?;
    let shape: [usize; 3] = t
        .shape()
        .try_into()
        .map_err(|_| LabError::Io(format!("`indices` has shape {:?}, expected [steps, K, B]", t.shape())))?;
    if t.dtype() != Dtype::U32 {
        return Err(LabError::Io(format!("`indices` is {:?}, expected U32", t.dtype())));
    }
    Ok((t.data().chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), shape))
}

/// Snapshots of K models' parameters during a run (see the module docs for the file format).
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// The models' layout.
    pub layout: Layout,
    /// Number of models K.
    pub models: usize,
    /// Steps done at each snapshot (increasing).
    pub steps: Vec<u64>,
    /// `S × K × P` values, snapshot after snapshot.
    pub params: Vec<f32>,
}

impl Trajectory {
    /// Model `m`'s parameters at every snapshot, in f64.
    pub fn model(&self, m: usize) -> Result<Vec<Vec<f64>>> {
        let p = self.layout.params_per_model;
        if m >= self.models {
            return Err(LabError::Io(format!("model {m} is not among the {} models of the trajectory", self.models)));
        }
        Ok(self.params.chunks_exact(self.models * p).map(|s| s[m * p..(m + 1) * p].iter().map(|&v| v as f64).collect()).collect())
    }
}

/// Serialises a trajectory to safetensors bytes (`params` `[S, K, P]` f32, `steps` `[S]` i64).
pub fn trajectory_to_safetensors(t: &Trajectory, config_json: Option<&str>) -> Result<Vec<u8>> {
    let (p, k, s) = (t.layout.params_per_model, t.models, t.steps.len());
    if p == 0 || t.params.len() != s * k * p {
        return Err(LabError::Backend(format!("{} values is not {s} snapshots of {k} models of {p} parameters", t.params.len())));
    }
    let params: Vec<u8> = t.params.iter().flat_map(|v| v.to_le_bytes()).collect();
    let steps: Vec<u8> = t.steps.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect();
    let views = vec![
        ("params".to_string(), TensorView::new(Dtype::F32, vec![s, k, p], &params).map_err(st_err)?),
        ("steps".to_string(), TensorView::new(Dtype::I64, vec![s], &steps).map_err(st_err)?),
    ];
    let mut meta = HashMap::new();
    meta.insert("layout".to_string(), serde_json::to_string(&t.layout).expect("layout serialises"));
    if let Some(c) = config_json {
        meta.insert("config".to_string(), c.to_string());
    }
    safetensors::tensor::serialize(views, Some(meta)).map_err(st_err)
}

/// Reads a trajectory written by [`trajectory_to_safetensors`].
pub fn trajectory_from_safetensors(bytes: &[u8]) -> Result<Trajectory> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
    let layout_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("layout"))
        .ok_or_else(|| LabError::Io("safetensors file has no `layout` metadata: was it written by sgd-lab?".into()))?;
    let layout: Layout = serde_json::from_str(layout_json).map_err(|e| LabError::Io(format!("bad `layout` metadata: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let t = st.tensor("params").map_err(|e| LabError::Io(format!("tensor `params` (is this a trajectory file?): {e}")))?;
    let shape = t.shape().to_vec();
    if t.dtype() != Dtype::F32 || shape.len() != 3 || shape[2] != layout.params_per_model {
        return Err(LabError::Io(format!("`params` is {:?} of shape {shape:?}, expected F32 [snapshots, K, {}]", t.dtype(), layout.params_per_model)));
    }
    let params: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let s = st.tensor("steps").map_err(|e| LabError::Io(format!("tensor `steps`: {e}")))?;
    if s.dtype() != Dtype::I64 || s.shape() != [shape[0]] {
        return Err(LabError::Io(format!("`steps` is {:?} of shape {:?}, expected I64 [{}]", s.dtype(), s.shape(), shape[0])));
    }
    let steps = s.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as u64).collect();
    Ok(Trajectory { layout, models: shape[1], steps, params })
}

fn st_err(e: safetensors::SafeTensorError) -> LabError {
    LabError::Io(format!("safetensors: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    #[test]
    fn parameters_round_trip_through_safetensors_per_layer() {
        let layout = Layout::new(&[3, 4, 2], Activation::Relu);
        let k = 2;
        let params: Vec<f32> = (0..k * layout.params_per_model).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = params_to_safetensors(&layout, &params, Some("{}")).unwrap();
        let (l2, p2) = params_from_safetensors(&bytes).unwrap();
        assert_eq!(l2, layout);
        assert_eq!(p2, params);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w1 = st.tensor("layers.1.weight").unwrap();
        assert_eq!(w1.shape(), &[2, 2, 4]);
        // model 1, layer 1, W[0][0] sits at offset P + 16 in the flat layout
        let first = f32::from_le_bytes(w1.data()[32..36].try_into().unwrap());
        assert_eq!(first, params[layout.params_per_model + 16]);
    }

    #[test]
    fn batches_round_trip_with_their_shape() {
        let idx: Vec<u32> = (0..24).collect();
        let bytes = batches_to_safetensors(&idx, 3, 4).unwrap();
        assert_eq!(batches_from_safetensors(&bytes).unwrap(), (idx, [2, 3, 4]));
    }

    #[test]
    fn trajectories_round_trip() {
        let layout = Layout::new(&[3, 4, 2], Activation::Relu);
        let p = layout.params_per_model;
        let t = Trajectory { layout, models: 2, steps: vec![0, 5, 7], params: (0..3 * 2 * p).map(|i| i as f32 * 0.25).collect() };
        let back = trajectory_from_safetensors(&trajectory_to_safetensors(&t, None).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.model(1).unwrap()[2][0], t.params[2 * 2 * p + p] as f64);
    }

    #[test]
    fn a_file_without_layout_is_refused_clearly() {
        let bytes = batches_to_safetensors(&[0, 1], 1, 2).unwrap();
        assert!(params_from_safetensors(&bytes).unwrap_err().to_string().contains("no `layout` metadata"));
    }
}
