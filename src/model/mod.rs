//! MLP architecture, the flat parameter layout shared by every K-model buffer, and seeded initialisation.
//!
//! One model's parameters are laid out layer by layer as `W` (out×in, row-major) then `b` (out);
//! K models are stored back to back: `[model][layer](W, b)`. Gradients, momentum buffers and every
//! direction vector of the later analyses use the same layout, so the optimiser is one elementwise pass.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// Non-linearity applied after every hidden layer (the output layer is always linear: it gives logits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, z)
    Relu,
    /// tanh(z)
    Tanh,
    /// z (a deep linear network)
    Linear,
}

impl Activation {
    /// Code used in the shaders' uniforms: 0 = linear, 1 = ReLU, 2 = tanh.
    pub fn code(self) -> u32 {
        match self {
            Activation::Linear => 0,
            Activation::Relu => 1,
            Activation::Tanh => 2,
        }
    }
}

/// Weight initialisation scheme. Biases always start at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// He et al. (2015): W ~ N(0, 2/fan_in). The usual choice for ReLU.
    He,
    /// Glorot & Bengio (2010), uniform: W ~ U(−a, a), a = sqrt(6/(fan_in+fan_out)). The usual choice for tanh.
    Xavier,
}

/// The architecture of one MLP: `input → hidden[0] → … → classes`, softmax cross-entropy on the logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// Number of input features.
    pub input: usize,
    /// Widths of the hidden layers (may be empty: multinomial logistic regression).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Number of output classes (logits).
    pub classes: usize,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Weight initialisation.
    pub init: Init,
}

/// Largest width the lab accepts for any layer (keeps buffer sizes inside WebGPU's default limits).
pub const MAX_WIDTH: usize = 8192;
/// Deepest network the lab accepts (the paper's deepest MLP has 20 layers).
pub const MAX_LAYERS: usize = 64;

impl MlpSpec {
    /// Checks every field; errors name the field (prefixed with `prefix`, e.g. `model`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let check = |name: String, v: usize| -> Result<()> {
            if v == 0 || v > MAX_WIDTH {
                return Err(LabError::config(name, format!("must be between 1 and {MAX_WIDTH}, got {v}")));
            }
            Ok(())
        };
        check(format!("{prefix}.input"), self.input)?;
        for (i, &h) in self.hidden.iter().enumerate() {
            check(format!("{prefix}.hidden[{i}]"), h)?;
        }
        check(format!("{prefix}.classes"), self.classes)?;
        if self.classes < 2 {
            return Err(LabError::config(format!("{prefix}.classes"), "must be at least 2 for softmax cross-entropy"));
        }
        if self.hidden.len() + 1 > MAX_LAYERS {
            return Err(LabError::config(
                format!("{prefix}.hidden"),
                format!("at most {} hidden layers are supported, got {}", MAX_LAYERS - 1, self.hidden.len()),
            ));
        }
        Ok(())
    }

    /// Layer widths from input to output: `[input, hidden…, classes]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = Vec::with_capacity(self.hidden.len() + 2);
        w.push(self.input);
        w.extend_from_slice(&self.hidden);
        w.push(self.classes);
        w
    }

    /// The offset table of one model's flat parameter vector.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.widths(), self.activation)
    }
}

/// Where one layer's weights and biases sit inside a model's flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerOffsets {
    /// Input width of the layer.
    pub fan_in: usize,
    /// Output width of the layer.
    pub fan_out: usize,
    /// Offset of `W` (fan_out × fan_in, row-major).
    pub w: usize,
    /// Offset of `b` (fan_out).
    pub b: usize,
}

/// The offset table shared by parameters, gradients, momentum and directions of every model in a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Widths `[input, hidden…, classes]`.
    pub widths: Vec<usize>,
    /// Hidden-layer activation.
    pub activation: Activation,
    /// One entry per layer, input to output.
    pub layers: Vec<LayerOffsets>,
    /// Number of parameters of one model (the stride between models).
    pub params_per_model: usize,
}

impl Layout {
    /// Builds the table for the given widths (at least two) and hidden activation.
    pub fn new(widths: &[usize], activation: Activation) -> Self {
        assert!(widths.len() >= 2, "a layout needs an input and an output width");
        let mut layers = Vec::with_capacity(widths.len() - 1);
        let mut off = 0;
        for pair in widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w = off;
            let b = w + fan_in * fan_out;
            off = b + fan_out;
            layers.push(LayerOffsets { fan_in, fan_out, w, b });
        }
        Layout { widths: widths.to_vec(), activation, layers, params_per_model: off }
    }

    /// Input width.
    pub fn input(&self) -> usize {
        self.widths[0]
    }

    /// Number of classes (output width).
    pub fn classes(&self) -> usize {
        *self.widths.last().expect("layout has widths")
    }

    /// The activation applied after layer `l` (hidden layers use the spec's; the last is linear).
    pub fn activation_after(&self, l: usize) -> Activation {
        if l + 1 == self.layers.len() {
            Activation::Linear
        } else {
            self.activation
        }
    }

    /// Sum of all layer widths except the input (activations stored per example during training).
    pub fn hidden_and_output_units(&self) -> usize {
        self.widths[1..].iter().sum()
    }
}

/// Draws one model's initial parameters, reproducibly from `seed` (ChaCha8, independent of platform).
pub fn init_params(spec: &MlpSpec, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut p = vec![0f32; layout.params_per_model];
    for l in &layout.layers {
        let w = &mut p[l.w..l.w + l.fan_in * l.fan_out];
        match spec.init {
            Init::He => {
                let normal = Normal::new(0.0, (2.0 / l.fan_in as f64).sqrt()).expect("positive std");
                for v in w.iter_mut() {
                    *v = normal.sample(&mut rng) as f32;
                }
            }
            Init::Xavier => {
                let a = (6.0 / (l.fan_in + l.fan_out) as f64).sqrt();
                for v in w.iter_mut() {
                    *v = rng.random_range(-a..a) as f32;
                }
            }
        }
        // biases stay zero
    }
    p
}

/// K models of one architecture with their parameters in one flat buffer `[model][layer](W, b)`.
#[derive(Clone, Debug)]
pub struct ModelBatch {
    /// The shared architecture.
    pub spec: MlpSpec,
    /// Offset table of one model.
    pub layout: Layout,
    /// Number of models.
    pub k: usize,
    /// `k * layout.params_per_model` parameters.
    pub params: Vec<f32>,
}

impl ModelBatch {
    /// Initialises K models, model `m` from `seeds[m]`.
    pub fn init(spec: &MlpSpec, seeds: &[u64]) -> Self {
        let layout = spec.layout();
        let mut params = Vec::with_capacity(seeds.len() * layout.params_per_model);
        for &s in seeds {
            params.extend(init_params(spec, s));
        }
        ModelBatch { spec: spec.clone(), layout, k: seeds.len(), params }
    }

    /// The parameters of model `m`.
    pub fn model(&self, m: usize) -> &[f32] {
        let p = self.layout.params_per_model;
        &self.params[m * p..(m + 1) * p]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(init: Init) -> MlpSpec {
        MlpSpec { input: 5, hidden: vec![7, 4], classes: 3, activation: Activation::Tanh, init }
    }

    #[test]
    fn layout_places_w_then_b_layer_by_layer() {
        let l = spec(Init::He).layout();
        assert_eq!(l.layers[0], LayerOffsets { fan_in: 5, fan_out: 7, w: 0, b: 35 });
        assert_eq!(l.layers[1], LayerOffsets { fan_in: 7, fan_out: 4, w: 42, b: 70 });
        assert_eq!(l.layers[2], LayerOffsets { fan_in: 4, fan_out: 3, w: 74, b: 86 });
        assert_eq!(l.params_per_model, 89);
    }

    #[test]
    fn init_is_reproducible_and_seed_dependent() {
        let s = spec(Init::Xavier);
        assert_eq!(init_params(&s, 7), init_params(&s, 7));
        assert_ne!(init_params(&s, 7), init_params(&s, 8));
    }

    #[test]
    fn he_init_has_the_expected_variance_and_zero_biases() {
        let s = MlpSpec { input: 400, hidden: vec![300], classes: 2, activation: Activation::Relu, init: Init::He };
        let p = init_params(&s, 1);
        let l = s.layout();
        let w = &p[l.layers[0].w..l.layers[0].b];
        let var = w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var - 2.0 / 400.0).abs() < 0.05 * 2.0 / 400.0, "variance {var}");
        assert!(p[l.layers[0].b..l.layers[1].w].iter().all(|&b| b == 0.0));
    }

    #[test]
    fn xavier_init_stays_inside_its_bound() {
        let s = spec(Init::Xavier);
        let p = init_params(&s, 3);
        let l = s.layout();
        let a = (6.0f32 / 12.0).sqrt();
        assert!(p[l.layers[0].w..l.layers[0].b].iter().all(|v| v.abs() <= a));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut s = spec(Init::He);
        s.hidden[1] = 0;
        let e = s.validate("model").unwrap_err().to_string();
        assert!(e.contains("model.hidden[1]"), "{e}");
        s.hidden[1] = 4;
        s.classes = 1;
        assert!(s.validate("model").unwrap_err().to_string().contains("model.classes"));
    }
}
