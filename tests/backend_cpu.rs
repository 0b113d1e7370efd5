//! The backend-generic suite (`tests/suite/`) on the f32 CPU backend.
#![cfg(not(target_arch = "wasm32"))]

mod suite;

suite::backend_suite!(suite::Cpu);
