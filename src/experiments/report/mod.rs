//! The claims report of a finished experiment: for each claim of its preset, the claim in one sentence,
//! the statistic that decides it, its value, the verdict at this scale, and the caveats; plus the figures.
//!
//! Verdicts are mechanical, from the statistic and a stated rule (e.g. "Spearman ρ < 0 with p < 0.05"), so
//! a reader can disagree with the rule but not with how it was applied. "Inconclusive" is used when too
//! few models finished for the statistic to exist.

use serde::Serialize;

mod breakdown;
mod edge;
mod interpolation;
mod memorization;
mod schedules;
mod sweep;

use super::results::{ExperimentResults, ModelResult};
use super::spec::ExperimentKind;
use super::stats;
use crate::error::{LabError, Result};

/// How a claim fared at this scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The statistic met the stated rule.
    Holds,
    /// The statistic contradicted the rule.
    DoesNotHold,
    /// Not enough finished models, or the statistic is undefined.
    Inconclusive,
}

impl Verdict {
    /// As printed in reports.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One tested claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    /// The claim in one sentence.
    pub statement: String,
    /// The statistic and the rule that decides the verdict.
    pub statistic: String,
    /// The statistic's value, with its interval or p-value.
    pub value: String,
    /// The verdict at this scale.
    pub verdict: Verdict,
}

/// One SVG figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// File stem, e.g. `"lambda-max-vs-ratio"`.
    pub name: String,
    /// Caption.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// A preset's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The experiment's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The paper's claim, as the preset states it.
    pub paper_claim: String,
    /// What ran: models, budget, data, engine.
    pub scale: String,
    /// The tested claims.
    pub claims: Vec<Claim>,
    /// Caveats that apply whatever the verdict.
    pub caveats: Vec<String>,
    /// Markdown tables (per setting means ± spread).
    pub tables: Vec<String>,
    /// The figures.
    pub figures: Vec<Figure>,
}

/// The report without its figures' SVG (for `report.json` and the JS API's summaries).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportSummary<'a> {
    /// The experiment's id.
    pub id: &'a str,
    /// Its title.
    pub title: &'a str,
    /// What ran.
    pub scale: &'a str,
    /// The tested claims.
    pub claims: &'a [Claim],
    /// Figure names and captions.
    pub figures: Vec<(&'a str, &'a str)>,
}

impl Report {
    /// The report as Markdown, with figures linked as `{figure_dir}/{name}.svg`.
    pub fn to_markdown(&self, figure_dir: &str) -> String {
        let mut s = format!("# {}\n\n**The paper's claim.** {}\n\n**What ran.** {}\n\n## Claims tested\n\n", self.title, self.paper_claim, self.scale);
        s += "| Claim | Statistic and rule | Value | Verdict at this scale |\n|---|---|---|---|\n";
        for c in &self.claims {
            s += &format!("| {} | {} | {} | **{}** |\n", cell(&c.statement), cell(&c.statistic), cell(&c.value), c.verdict.label());
        }
        if !self.tables.is_empty() {
            s += "\n## Measurements\n\n";
            for t in &self.tables {
                s += t;
                s += "\n";
            }
        }
        s += "\n## Figures\n\n";
        for f in &self.figures {
            s += &format!("![{}]({figure_dir}/{}.svg)\n\n*{}*\n\n", cell(&f.title), f.name, f.title);
        }
        s += "## Caveats\n\n";
        for c in &self.caveats {
            s += &format!("- {c}\n");
        }
        s
    }

    /// The report without the SVG documents.
    pub fn summary(&self) -> ReportSummary<'_> {
        ReportSummary { id: &self.id, title: &self.title, scale: &self.scale, claims: &self.claims, figures: self.figures.iter().map(|f| (f.name.as_str(), f.title.as_str())).collect() }
    }
}

/// Escapes a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Builds the report of finished results (every group done).
pub fn build(results: &ExperimentResults) -> Result<Report> {
    if !results.complete() {
        return Err(LabError::config("results", format!("{} of {} groups are done; a report needs them all (merge the shards first)", results.jobs.len(), results.planned_jobs)));
    }
    let cfg = &results.config;
    let mut r = Report {
        id: cfg.id.clone(),
        title: cfg.title.clone(),
        paper_claim: cfg.claim.clone(),
        scale: scale(results),
        claims: Vec::new(),
        caveats: Vec::new(),
        tables: Vec::new(),
        figures: Vec::new(),
    };
    match &cfg.experiment {
        ExperimentKind::RatioSweep { .. } => sweep::report(results, &mut r)?,
        ExperimentKind::Interpolation { .. } => interpolation::report(results, &mut r)?,
        ExperimentKind::Schedules { .. } => schedules::report(results, &mut r)?,
        ExperimentKind::Memorization { .. } => memorization::report(results, &mut r)?,
        ExperimentKind::Breakdown { .. } => breakdown::report(results, &mut r)?,
        ExperimentKind::EdgeOfStability { .. } => edge::report(results, &mut r)?,
    }
    r.caveats.extend(common_caveats(results));
    Ok(r)
}

/// One line on what ran: models, groups, data, budget, seeds, engine, time.
fn scale(results: &ExperimentResults) -> String {
    let cfg = &results.config;
    let models = results.models().count();
    let diverged = results.models().filter(|m| !m.ok()).count();
    let data = match (&cfg.dataset, &cfg.data) {
        (Some(d), _) => format!(
            "{} with N = {} training examples{}",
            d.name.name(),
            d.len(),
            d.validation_size.map_or(String::new(), |v| format!(" and {v} validation examples"))
        ),
        (None, Some(d)) => format!("synthetic data ({} examples)", d.len()),
        _ => "no data".into(),
    };
    let engines: std::collections::BTreeSet<&str> = results.jobs.iter().map(|j| j.backend.as_str()).collect();
    let seconds: f64 = results.jobs.iter().map(|j| j.seconds).sum();
    let measured = results.models().any(|m| m.lambda_max.is_some() || !m.sharpness.is_empty());
    let hessian = if measured {
        format!("λ_max by {} Lanczos steps on {} training examples; ", cfg.analysis.lanczos_iterations, cfg.analysis.hessian_examples)
    } else {
        String::new()
    };
    format!(
        "{models} models ({diverged} diverged) of a {:?} {:?} MLP in {} groups on {data}; budget {}; seeds {:?}; {hessian}engine {}; {:.0} s of training and measurement.",
        cfg.model.layout().widths,
        cfg.model.activation,
        results.jobs.len(),
        cfg.budget.label(),
        cfg.seeds,
        engines.into_iter().collect::<Vec<_>>().join(", "),
        seconds,
    )
}

/// Caveats that apply to every preset.
fn common_caveats(results: &ExperimentResults) -> Vec<String> {
    let cfg = &results.config;
    let max_b_over_n = results.models().map(|m| m.tag.batch_size as f64 / m.tag.train_size.max(1) as f64).fold(0.0, f64::max);
    vec![
        format!("The theory approximates SGD by an SDE whose noise covariance is (η/B)·Σ: it drops the finite-sample factor (1 − B/N), so it speaks only for B ≪ N. Here B/N reaches {max_b_over_n:.3}."),
        "Sharpness is not invariant to reparameterisation (Dinh et al., 2017): rescaling the layers of a ReLU net changes λ_max and Tr H without changing the function. Comparisons are meaningful only between nets of the same architecture, initialisation and training recipe, as here.".into(),
        "Later work (Luo et al., 2020) revisits when and how far the η/B rule holds; read a verdict here as one data point at this scale, not as a confirmation or refutation of the paper.".into(),
        format!(
            "λ_max is a Lanczos estimate ({} iterations) of the Hessian of the mean loss over the first {} training examples, not of the whole training loss; Tr H (when shown) is a Hutchinson estimate with its standard error.",
            cfg.analysis.lanczos_iterations, cfg.analysis.hessian_examples
        ),
        format!("Verdicts use a {:.0} % level (p < {:.2}); with few seeds and a small grid, 'does not hold' may mean 'not detectable at this scale'.", 100.0 * cfg.analysis.confidence, 1.0 - cfg.analysis.confidence),
    ]
}

/// Compact number for reports: 3 significant digits.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    if x.abs() < 1e-3 || x.abs() >= 1e5 {
        format!("{x:.2e}")
    } else {
        let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    }
}

/// The significance level `1 − confidence`, e.g. `"0.05"`.
pub(crate) fn alpha(confidence: f64) -> String {
    let s = format!("{:.4}", 1.0 - confidence);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `ρ = …, p = …, n = …`.
pub(crate) fn corr_text(c: &stats::Correlation) -> String {
    format!("ρ = {}, p = {}, n = {}", num(c.rho), num(c.p_value), c.n)
}

/// The verdict of a directional Spearman test: right sign and p below `1 − confidence`.
pub(crate) fn direction_verdict(c: Option<&stats::Correlation>, positive: bool, confidence: f64) -> Verdict {
    match c {
        None => Verdict::Inconclusive,
        Some(c) if c.p_value < 1.0 - confidence && (c.rho > 0.0) == positive => Verdict::Holds,
        Some(_) => Verdict::DoesNotHold,
    }
}

/// A directional Spearman claim over `(x, y)` pairs.
pub(crate) fn spearman_claim(statement: &str, x_name: &str, y_name: &str, xs: &[f64], ys: &[f64], positive: bool, confidence: f64) -> Claim {
    let c = stats::spearman(xs, ys);
    Claim {
        statement: statement.into(),
        statistic: format!(
            "Spearman ρ between {x_name} and {y_name} over finished models; holds if ρ {} 0 with p < {}",
            if positive { ">" } else { "<" },
            alpha(confidence)
        ),
        value: c.as_ref().map_or_else(|| format!("undefined ({} usable models)", xs.len()), corr_text),
        verdict: direction_verdict(c.as_ref(), positive, confidence),
    }
}

/// Groups items by a key, keeping first-seen order.
pub(crate) fn group_by<'a, T, K: PartialEq + Clone>(items: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> K) -> Vec<(K, Vec<&'a T>)>
where
    T: 'a,
{
    let mut out: Vec<(K, Vec<&T>)> = Vec::new();
    for it in items {
        let k = key(it);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(it),
            None => out.push((k, vec![it])),
        }
    }
    out
}

/// Validation accuracy of the last evaluation, else training accuracy (synthetic data has no split).
pub(crate) fn generalisation(m: &ModelResult) -> f64 {
    m.last.validation_accuracy.unwrap_or(m.last.train_accuracy)
}

/// Name of what [`generalisation`] measures for these results.
pub(crate) fn generalisation_name(results: &ExperimentResults) -> &'static str {
    if results.models().any(|m| m.last.validation_accuracy.is_some()) {
        "validation accuracy"
    } else {
        "training accuracy (no validation split)"
    }
}
