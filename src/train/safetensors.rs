//! A training run's trace: initial and final parameters as safetensors, and the exact mini-batch
//! indices of every step, so any run can be replayed elsewhere (PyTorch, JAX, or this lab).
//!
//! Parameter files hold one tensor per layer and kind, stacked over the K models:
//! `layers.{l}.weight` with shape `[K, out, in]` and `layers.{l}.bias` with shape `[K, out]` (f32),
//! plus metadata `layout` (JSON of [`Layout`]) and, when known, `config` (the run's JSON).
//! `sgd-lab hessian` exports vectors in the same per-layer convention in F64 with more leading dimensions
//! ([`vectors_to_safetensors`]): the Ritz vectors `[K, J, out, in]` / `[K, J, out]`, the ε-sharpness
//! maximiser `[K, out, in]` / `[K, out]` (docs/hessian.md, "Re-deriving the numbers").
//! The batch file holds `indices`, u32 of shape `[steps, K, B]`.
//! A trajectory file (`sgd-lab train --snapshot-every N`) holds `params`, f32 of shape `[S, K, P]` (S
//! snapshots of the K models, each in the flat layout of [`Layout`]: per layer W row-major `[out][in]`,
//! then b), `steps`, i64 of shape `[S]` (steps done at each snapshot), and the `layout` metadata.

use std::collections::HashMap;

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{LabError, Result};
use crate::model::Layout;

/// Serialises K models' parameters (`K × P`, the flat layout) to safetensors bytes.
pub fn params_to_safetensors(layout: &Layout, params: &[f32], config_json: Option<&str>) -> Result<Vec<u8>> {
    let p = layout.params_per_model;
    if p == 0 || params.len() % p != 0 {
        return Err(LabError::Backend(format!("{} values is not a whole number of models of {p} parameters", params.len())));
    }
    let mut meta = HashMap::new();
    if let Some(c) = config_json {
        meta.insert("config".to_string(), c.to_string());
    }
    layers_to_safetensors(layout, params, &[params.len() / p], meta)
}

/// Reads parameters written by [`params_to_safetensors`]: the layout and the flat `K × P` values.
pub fn params_from_safetensors(bytes: &[u8]) -> Result<(Layout, Vec<f32>)> {
    let (layout, _, values) = layers_from_safetensors::<f32>(bytes, Some(1))?;
    Ok((layout, values))
}

/// Vectors in the flat parameter layout (one `P`-vector per index of `lead`), as
/// [`vectors_to_safetensors`] writes and [`vectors_from_safetensors`] reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVectors {
    /// The models' layout.
    pub layout: Layout,
    /// The leading dimensions of every tensor (e.g. `[K]` or `[K, J]`); `Π lead` vectors in all.
    pub lead: Vec<usize>,
    /// `Π lead × P` values, vector after vector (row-major over `lead`), each in the flat layout.
    pub values: Vec<f64>,
    /// The file's metadata (including `layout`).
    pub metadata: HashMap<String, String>,
}

/// Serialises f64 vectors in the flat parameter layout to safetensors bytes in the parameter files'
/// per-layer convention: `layers.{l}.weight` of shape `[lead…, out, in]` and `layers.{l}.bias` of shape
/// `[lead…, out]`, F64, plus the `layout` metadata and `metadata` (which must not hold `layout`).
/// `values` holds `Π lead` vectors of P values, row-major over `lead`. Used for what `sgd-lab hessian`
/// exports (Ritz vectors `[K, J]`, the ε-sharpness maximiser `[K]`).
pub fn vectors_to_safetensors(layout: &Layout, values: &[f64], lead: &[usize], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let (p, count) = (layout.params_per_model, lead.iter().product::<usize>());
    if p == 0 || lead.is_empty() || values.len() != count * p {
        return Err(LabError::Backend(format!("{} values is not {lead:?} vectors of {p} parameters", values.len())));
    }
    if metadata.contains_key("layout") {
        return Err(LabError::Backend("the `layout` metadata is written from the layout".into()));
    }
    layers_to_safetensors(layout, values, lead, metadata)
}

/// Reads vectors written by [`vectors_to_safetensors`] (F64 per-layer tensors of any leading shape).
pub fn vectors_from_safetensors(bytes: &[u8]) -> Result<LayerVectors> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let (layout, lead, values) = layers_from_safetensors::<f64>(bytes, None)?;
    Ok(LayerVectors { layout, lead, values, metadata })
}

/// A number type of the per-layer tensors.
trait Element: Copy + Default {
    const DTYPE: Dtype;
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    const SIZE: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes(b.try_into().expect("4 bytes"))
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
}

/// `Π lead` flat vectors as per-layer tensors `layers.{l}.weight [lead…, out, in]`, `layers.{l}.bias
/// [lead…, out]`, with the `layout` metadata added to `meta`.
fn layers_to_safetensors<T: Element>(layout: &Layout, values: &[T], lead: &[usize], mut meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let (p, count) = (layout.params_per_model, lead.iter().product::<usize>());
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (l, lo) in layout.layers.iter().enumerate() {
        let mut w = Vec::with_capacity(count * lo.fan_in * lo.fan_out * T::SIZE);
        let mut b = Vec::with_capacity(count * lo.fan_out * T::SIZE);
        for v in 0..count {
            let base = v * p;
            values[base + lo.w..base + lo.w + lo.fan_in * lo.fan_out].iter().for_each(|x| x.put(&mut w));
            values[base + lo.b..base + lo.b + lo.fan_out].iter().for_each(|x| x.put(&mut b));
        }
        blobs.push((format!("layers.{l}.weight"), [lead, &[lo.fan_out, lo.fan_in]].concat(), w));
        blobs.push((format!("layers.{l}.bias"), [lead, &[lo.fan_out]].concat(), b));
    }
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(T::DTYPE, shape.clone(), data).map_err(st_err)?)))
        .collect::<Result<_>>()?;
    meta.insert("layout".to_string(), serde_json::to_string(layout).expect("layout serialises"));
    ::safetensors::tensor::serialize(views, Some(meta)).map_err(st_err)
}

/// Reads per-layer tensors of element type `T`: the layout, the leading dimensions and the flat values.
/// `lead_rank`: how many leading dimensions (None: the rank of `layers.0.bias` minus one). The trailing
/// dimensions need only hold the layer's number of values.
fn layers_from_safetensors<T: Element>(bytes: &[u8], lead_rank: Option<usize>) -> Result<(Layout, Vec<usize>, Vec<T>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
    let layout_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("layout"))
        .ok_or_else(|| LabError::Io("safetensors file has no `layout` metadata: was it written by sgd-lab?".into()))?;
    let layout: Layout = serde_json::from_str(layout_json).map_err(|e| LabError::Io(format!("bad `layout` metadata: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let p = layout.params_per_model;
    let lead_rank = match lead_rank {
        Some(r) => r,
        None => st.tensor("layers.0.bias").map_err(|e| LabError::Io(format!("tensor `layers.0.bias`: {e}")))?.shape().len().saturating_sub(1),
    };
    let mut lead: Option<Vec<usize>> = None;
    let mut out = Vec::new();
    for (l, lo) in layout.layers.iter().enumerate() {
        for (name, len, off) in [
            (format!("layers.{l}.weight"), lo.fan_in * lo.fan_out, lo.w),
            (format!("layers.{l}.bias"), lo.fan_out, lo.b),
        ] {
            let t = st.tensor(&name).map_err(|e| LabError::Io(format!("tensor `{name}`: {e}")))?;
            if t.dtype() != T::DTYPE {
                return Err(LabError::Io(format!("tensor `{name}` is {:?}, expected {:?}", t.dtype(), T::DTYPE)));
            }
            let shape = t.shape();
            if lead.is_none() {
                if lead_rank == 0 || lead_rank > shape.len() {
                    return Err(LabError::Io(format!("tensor `{name}` has shape {shape:?}: no leading model dimension")));
                }
                out = vec![T::default(); shape[..lead_rank].iter().product::<usize>() * p];
                lead = Some(shape[..lead_rank].to_vec());
            }
            let lead = lead.as_ref().expect("set above");
            let count: usize = lead.iter().product();
            if shape.len() < lead.len() || shape[..lead.len()] != lead[..] || shape.iter().product::<usize>() != count * len {
                return Err(LabError::Io(format!("tensor `{name}` has shape {shape:?}, expected {lead:?} × {len} values")));
            }
            for (i, c) in t.data().chunks_exact(T::SIZE).enumerate() {
                let (v, j) = (i / len, i % len);
                out[v * p + off + j] = T::get(c);
            }
        }
    }
    Ok((layout, lead.unwrap_or_default(), out))
}

/// Serialises the mini-batch indices `[steps][K][B]` to safetensors bytes (tensor `indices`, u32).
pub fn batches_to_safetensors(indices: &[u32], k: usize, batch: usize) -> Result<Vec<u8>> {
    if k == 0 || batch == 0 || indices.len() % (k * batch) != 0 {
        return Err(LabError::Backend(format!("{} indices is not whole steps of {k}×{batch}", indices.len())));
    }
    let steps = indices.len() / (k * batch);
    let bytes: Vec<u8> = indices.iter().flat_map(|i| i.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::U32, vec![steps, k, batch], &bytes).map_err(st_err)?;
    ::safetensors::tensor::serialize([("indices", view)], None).map_err(st_err)
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
    ::safetensors::tensor::serialize([("indices", a), ("batch_sizes", b)], None).map_err(st_err)
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
    ::safetensors::tensor::serialize(views, Some(meta)).map_err(st_err)
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

fn st_err(e: ::safetensors::SafeTensorError) -> LabError {
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
    fn f64_vectors_round_trip_per_layer_with_their_leading_shape_and_metadata() {
        let layout = Layout::new(&[3, 4, 2], Activation::Tanh);
        let p = layout.params_per_model;
        let (k, j) = (2, 3);
        let values: Vec<f64> = (0..k * j * p).map(|i| (i as f64).sqrt() / 7.0 - 1.0).collect();
        let meta = HashMap::from([("eigenvalues".to_string(), "[[3.0, 2.0, 1.0], [4.0, 1.0, 0.5]]".to_string())]);
        let bytes = vectors_to_safetensors(&layout, &values, &[k, j], meta).unwrap();
        let back = vectors_from_safetensors(&bytes).unwrap();
        assert_eq!((&back.layout, &back.lead[..], &back.values), (&layout, &[k, j][..], &values));
        assert_eq!(back.metadata["eigenvalues"], "[[3.0, 2.0, 1.0], [4.0, 1.0, 0.5]]");
        assert!(back.metadata.contains_key("layout"));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (w1, b0) = (st.tensor("layers.1.weight").unwrap(), st.tensor("layers.0.bias").unwrap());
        assert_eq!((w1.dtype(), w1.shape(), b0.shape()), (Dtype::F64, &[k, j, 2, 4][..], &[k, j, 4][..]));
        // vector (m = 1, j = 2), layer 1, W[0][0]: the (1·J + 2)-th vector's offset 16
        let first = f64::from_le_bytes(w1.data()[(j + 2) * 8 * 8..(j + 2) * 8 * 8 + 8].try_into().unwrap());
        assert_eq!(first, values[(j + 2) * p + 16]);
        // one leading dimension, as the ε-sharpness maximiser
        let one = vectors_from_safetensors(&vectors_to_safetensors(&layout, &values[..k * p], &[k], HashMap::new()).unwrap()).unwrap();
        assert_eq!((&one.lead[..], &one.values[..]), (&[k][..], &values[..k * p]));
    }

    #[test]
    fn f64_vectors_are_not_read_as_parameters_nor_parameters_as_vectors() {
        let layout = Layout::new(&[2, 3, 2], Activation::Relu);
        let p = layout.params_per_model;
        let vectors = vectors_to_safetensors(&layout, &vec![0.5; 2 * p], &[2], HashMap::new()).unwrap();
        assert!(params_from_safetensors(&vectors).unwrap_err().to_string().contains("expected F32"));
        let params = params_to_safetensors(&layout, &vec![0.5; 2 * p], None).unwrap();
        assert!(vectors_from_safetensors(&params).unwrap_err().to_string().contains("expected F64"));
        assert!(vectors_to_safetensors(&layout, &vec![0.5; 2 * p], &[3], HashMap::new()).is_err());
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
