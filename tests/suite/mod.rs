//! One suite of backend-generic tests, expanded once per backend (as Burn's test generators do): the trainer,
//! its determinism, the ε-sharpness and the landscape primitives must behave the same on the CPU and on the
//! GPU, so their tests are written once, here, generic over an [`Engine`], and `backend_suite!` declares
//! every one of them as a `#[test]` in the file that names the engine: `tests/backend_cpu.rs` (the f32 CPU
//! backend) and `tests/backend_gpu.rs` (wgpu on lavapipe natively).
//!
//! What is *not* here is backend-specific: kernel-by-kernel parity against the f64 reference
//! (`tests/gpu_parity.rs`), the CPU's thread counts and exact replays with the reference routines
//! (`tests/trainer_cpu.rs`), a fresh GPU device (`tests/determinism_gpu.rs`).
#![allow(dead_code)]

pub mod determinism;
pub mod landscape;
pub mod sharpness;
pub mod trainer;

use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::curvature::Curvature;
use sgd_lab::backend::gpu::{GpuBackend, GpuContext};
use sgd_lab::backend::perturb::Perturb;
use sgd_lab::backend::{Backend, DataHandle};
use sgd_lab::model::Layout;

/// Where a suite gets its backends: every test asks for fresh ones of the same kind.
pub trait Engine {
    /// The backend this engine makes.
    type B: Backend + Curvature + Perturb;
    /// A backend for `k` models of `layout`, batches of up to `max_batch` rows.
    fn backend(&self, layout: &Layout, k: usize, max_batch: usize) -> Self::B;
}

/// The f32 CPU backend on the shared thread pool.
pub struct Cpu;

impl Engine for Cpu {
    type B = CpuBackend<f32>;
    fn backend(&self, layout: &Layout, k: usize, max_batch: usize) -> Self::B {
        CpuBackend::<f32>::new(layout, k, max_batch).unwrap()
    }
}

/// The wgpu backend, all of a test's backends on one device (lavapipe natively).
pub struct Gpu(pub GpuContext);

impl Gpu {
    /// A new device.
    pub fn new() -> Gpu {
        Gpu(pollster::block_on(GpuContext::new()).expect("a GPU adapter (lavapipe natively: install mesa-vulkan-drivers)"))
    }
}

impl Engine for Gpu {
    type B = GpuBackend;
    fn backend(&self, layout: &Layout, k: usize, max_batch: usize) -> Self::B {
        GpuBackend::new(&self.0, layout, k, max_batch).unwrap()
    }
}

/// A backend of `engine` holding K random models of `layout` and a random data set of `n` examples (inputs in
/// (−2, 2), labels uniform): the same draws as `common::tiny_backend`, so a test can move between the two.
pub fn tiny<E: Engine>(engine: &E, layout: &Layout, k: usize, n: usize, max_batch: usize, seed: u64) -> (E::B, DataHandle) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let classes = layout.classes();
    let x: Vec<f32> = (0..n * layout.input()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
    let data = sgd_lab::data::Dataset::new("tiny", layout.input(), classes, sgd_lab::data::Features::F32(x), y).unwrap();
    let mut b = engine.backend(layout, k, max_batch);
    let h = b.upload_dataset(&data).unwrap();
    let params: Vec<f32> = (0..k * layout.params_per_model).map(|_| rng.random_range(-0.8..0.8)).collect();
    b.write_params(&params).unwrap();
    (b, h)
}

/// Declares every test of the suite as a `#[test]` running on the engine `$engine` (an expression, built
/// anew for each test). The list of tests is written here once.
#[allow(unused_macros)] // tests/trainer_cpu.rs uses the suite's configs, not its tests
macro_rules! backend_suite {
    ($engine:expr) => {
        $crate::suite::backend_suite!(@tests $engine;
            trainer::training_on_two_spirals_lowers_the_loss_well_below_chance,
            trainer::a_model_with_a_huge_learning_rate_is_flagged_and_its_batch_mates_train_as_if_alone,
            determinism::the_same_config_gives_bit_identical_results,
            determinism::a_trainer_restored_from_a_state_at_step_s_ends_bit_identical_to_one_run_straight_through,
            sharpness::sharpness_is_nonnegative_in_the_box_beats_random_search_and_restores_the_parameters,
            landscape::interpolation_at_zero_and_one_reproduces_both_models_bitwise,
            landscape::perturb_writes_every_model_in_place_and_refuses_a_wrong_count,
        );
    };
    (@tests $engine:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::suite::$module::$test(&$engine);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use backend_suite;
