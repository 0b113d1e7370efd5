//! The paper's experiments as presets: serde configs ([`spec`]), expanded into groups of K models
//! ([`plan`]), run chunk by chunk on any backend ([`runner`]) into saved, resumable, mergeable
//! [`results`], and judged by a claims report per preset ([`report`]) with the statistics in [`stats`]
//! and the SVG figures in [`figures`]. Presets ship as JSON files in `presets/` ([`presets`]).
//! The command line's `run`, `merge` and `report` (files in a run directory) are in `cli::experiments`.

pub mod figures;
pub mod plan;
pub mod presets;
pub mod report;
pub mod results;
pub mod runner;
pub mod spec;
pub mod stats;

pub use plan::{plan, Job, ModelTag};
pub use results::{CurvePoint, ExperimentResults, InterpolationResult, JobResult, ModelResult, SharpnessPoint};
pub use runner::{DataSource, ExperimentRun, RunEvent};
pub use spec::{AlphaRange, AnalysisSettings, Budget, ExperimentConfig, ExperimentKind, Setting};
