//! The presets shipped in `presets/*.json`, compiled in so the page and the CLI list the same ones.

use super::spec::ExperimentConfig;
use crate::error::{LabError, Result};

/// `(id, JSON)` of every shipped preset, in the paper's order.
pub const PRESETS: [(&str, &str); 8] = [
    ("e1-ratio-sweep", include_str!("../../presets/e1-ratio-sweep.json")),
    ("e1-ratio-sweep-deep", include_str!("../../presets/e1-ratio-sweep-deep.json")),
    ("e2-interpolation-ratios", include_str!("../../presets/e2-interpolation-ratios.json")),
    ("e3-interpolation-equal-ratio", include_str!("../../presets/e3-interpolation-equal-ratio.json")),
    ("e4-schedules", include_str!("../../presets/e4-schedules.json")),
    ("e5-memorization", include_str!("../../presets/e5-memorization.json")),
    ("e6-breakdown", include_str!("../../presets/e6-breakdown.json")),
    ("edge-of-stability", include_str!("../../presets/edge-of-stability.json")),
];

/// The JSON of preset `id`.
pub fn preset_json(id: &str) -> Result<&'static str> {
    PRESETS.iter().find(|(i, _)| *i == id).map(|(_, j)| *j).ok_or_else(|| {
        let ids: Vec<&str> = PRESETS.iter().map(|(i, _)| *i).collect();
        LabError::config("preset", format!("unknown preset `{id}`; the presets are {}", ids.join(", ")))
    })
}

/// Preset `id`, parsed and validated, after an optional JSON merge patch.
pub fn preset(id: &str, patch: Option<&str>) -> Result<ExperimentConfig> {
    ExperimentConfig::from_json_with_patch(preset_json(id)?, patch)
}
