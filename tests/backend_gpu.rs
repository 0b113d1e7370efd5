//! The backend-generic suite (`tests/suite/`) on the GPU backend (lavapipe natively: Vulkan on the CPU).
#![cfg(not(target_arch = "wasm32"))]

mod suite;

suite::backend_suite!(suite::Gpu::new());
