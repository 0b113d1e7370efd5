//! The paper's experiments as presets: serde configs, a runner that schedules K-model groups on any
//! backend, and a claims report per preset (the claim, the statistic that decides it, the verdict at this
//! scale and the caveats).

pub mod figures;
pub mod stats;
