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

use super::results::{CurvePoint, ExperimentResults, ModelResult};
use super::spec::{AnalysisSettings, ExperimentKind};
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
    /// One line per data set the run used: its files' SHA-256 (and whether they are the pinned ones) or its
    /// generator, and the digests of the rows chosen.
    pub data: Vec<String>,
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
        let mut s = format!("# {}\n\n**The paper's claim.** {}\n\n**What ran.** {}\n\n", self.title, self.paper_claim, self.scale);
        if !self.data.is_empty() {
            s += "**The data** (results.json `data` has the full record; `sgd-lab data indices` prints the rows):\n\n";
            for d in &self.data {
                s += &format!("- {d}\n");
            }
            s += "\n";
        }
        s += "## Claims tested\n\n";
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
        if self.figures.is_empty() {
            s += "No figure could be drawn; the caveats say why.\n\n";
        }
        for f in &self.figures {
            s += &format!("![{}]({figure_dir}/{}.svg)\n\n*{}*\n\n", cell(&f.title), f.name, f.title);
        }
        s += "## Caveats\n\n";
        for c in &self.caveats {
            s += &format!("- {c}\n");
        }
        s
    }

    /// Adds a figure, or, when it cannot be drawn (every point diverged, nothing finite to show), a caveat
    /// naming it and why: a finished run must not lose its whole report to one figure.
    pub(crate) fn add_figure(&mut self, name: impl Into<String>, title: impl Into<String>, svg: Result<String>) {
        let (name, title) = (name.into(), title.into());
        match svg {
            Ok(svg) => self.figures.push(Figure { name, title, svg }),
            Err(e) => {
                let why = match e {
                    LabError::Config { message, .. } => message,
                    other => other.to_string(),
                };
                self.caveats.push(format!("Figure not drawn: `{name}` ({title}): {why}."));
            }
        }
    }

    /// Notes figures left out because this grid cannot support them (e.g. a plot against η/B when every cell
    /// has the same η/B), with the reason.
    pub(crate) fn skip_figures(&mut self, names: &[String], why: &str) {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        self.caveats.push(format!("{} not drawn: {}: {why}.", if names.len() == 1 { "Figure" } else { "Figures" }, names.join(", ")));
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
        data: results.data.iter().map(data_line).collect(),
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
        (Some(d), _) => {
            let shape = d.shape();
            let v = shape.map_or(0, |s| d.validation_len(&s));
            let chosen = match d.subset {
                crate::data::SubsetRule::Stratified => format!("a stratified random draw, seed {}", d.seed),
                crate::data::SubsetRule::First => "the first ones in file order".to_string(),
            };
            let validation = match (v, d.validation_from) {
                (0, _) => String::new(),
                (v, crate::data::ValidationSource::TrainFile) => format!(" and {v} validation examples held out of the training file"),
                (v, crate::data::ValidationSource::TestFile) => format!(" and {v} validation examples from the test file"),
            };
            format!("{} with N = {} training examples ({chosen}){validation}", d.name.name(), d.len())
        }
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

/// One data record in words: where it came from, the files' hashes and pins, the rows' digests.
fn data_line(d: &crate::data::DataRecord) -> String {
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let mut s = format!("{}: {} training, {} validation examples", d.source, d.train_examples, d.validation_examples);
    if d.random_labels > 0 {
        s += &format!(", {} random labels", d.random_labels);
    }
    if let Some(g) = &d.synthetic {
        s += &format!("; generated by {}", serde_json::to_string(g).expect("configs serialise"));
    }
    if !d.files.is_empty() {
        let files: Vec<String> = d
            .files
            .iter()
            .map(|f| {
                let pin = match f.matches_pin() {
                    Some(true) => "pinned",
                    Some(false) => "NOT the pinned file",
                    None => "no pin",
                };
                format!("`{}` SHA-256 {}… ({pin})", f.file, short(&f.sha256))
            })
            .collect();
        s += &format!("; files {}", files.join(", "));
    }
    if let Some(r) = &d.train_rows_sha256 {
        s += &format!("; training rows SHA-256 {}…", short(r));
    }
    if let Some(r) = &d.validation_rows_sha256 {
        s += &format!(", validation rows {}…", short(r));
    }
    s + &format!("; training features {}…", short(&d.train_features_sha256))
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
        value: c.as_ref().map_or_else(|| format!("undefined ({} usable models; ρ needs at least 3 over which {x_name} and {y_name} both vary)", xs.len()), corr_text),
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

/// What the generalisation claims measure, decided once per report and never model by model: validation
/// accuracy when every finished model has one. Otherwise those claims refuse (training accuracy measures
/// fit, not generalisation, and a statistic over a mix of the two compares unlike things), while tables and
/// figures still show training accuracy, labelled as such.
#[derive(Clone, Debug)]
pub(crate) struct Generalisation {
    /// Finished models (all models when none finished) without a validation accuracy.
    missing: usize,
    /// Finished models (all models when none finished).
    of: usize,
    /// How to get a validation split with this config's kind of data.
    hint: &'static str,
}

impl Generalisation {
    /// What the generalisation claims of these results are about, in their statements.
    pub(crate) const CLAIMED: &'static str = "validation accuracy";

    /// The choice for these results.
    pub(crate) fn of(results: &ExperimentResults) -> Self {
        let finished: Vec<&ModelResult> = results.models().filter(|m| m.ok()).collect();
        let used = if finished.is_empty() { results.models().collect() } else { finished };
        let missing = used.iter().filter(|m| m.last.validation_accuracy.is_none()).count();
        let hint = if results.config.data.is_some() {
            "synthetic `data` has no validation split; use a real `dataset` with `validation_size` (e.g. 2000) to test this claim"
        } else {
            "set `dataset.validation_size` (e.g. 2000) or `dataset.validation_fraction` to hold out a validation split"
        };
        Generalisation { missing, of: used.len(), hint }
    }

    fn validated(&self) -> bool {
        self.missing == 0
    }

    /// The measurement's name in tables and figures (claims name [`Self::CLAIMED`], what they need).
    pub(crate) fn label(&self) -> String {
        match (self.validated(), self.missing == self.of) {
            (true, _) => Self::CLAIMED.into(),
            (false, true) => "training accuracy (no validation split)".into(),
            (false, false) => format!("training accuracy ({} of {} models lack a validation accuracy)", self.missing, self.of),
        }
    }

    /// The measurement at one point of a model's curve (None when that point lacks it).
    pub(crate) fn at(&self, p: &CurvePoint) -> Option<f64> {
        if self.validated() {
            p.validation_accuracy
        } else {
            Some(p.train_accuracy)
        }
    }

    /// The measurement at the end of training (NaN when absent).
    pub(crate) fn value(&self, m: &ModelResult) -> f64 {
        self.at(&m.last).unwrap_or(f64::NAN)
    }

    /// Why a claim about generalisation cannot be tested on these results, if it cannot.
    pub(crate) fn refusal(&self) -> Option<String> {
        if self.validated() {
            None
        } else if self.missing == self.of {
            Some(format!("refused: no model has a validation accuracy, and training accuracy measures fit, not generalisation; {}", self.hint))
        } else {
            Some(format!(
                "refused: {} of {} finished models have no validation accuracy, and validation and training accuracy cannot be mixed in one statistic; {}",
                self.missing, self.of, self.hint
            ))
        }
    }

    /// `claim`, or, when generalisation cannot be tested here, the same claim made inconclusive with the reason
    /// as its value.
    pub(crate) fn guard(&self, claim: Claim) -> Claim {
        match self.refusal() {
            Some(why) => Claim { value: why, verdict: Verdict::Inconclusive, ..claim },
            None => claim,
        }
    }
}

/// `mean ± sd` of a measurement over replicates (`unit`: what one replicate is, e.g. `"seed"`): `–` for
/// none, and `mean ± n/a (1 seed)` for one, whose spread does not exist (never `± NaN`).
pub(crate) fn mean_sd(v: &[f64], unit: &str) -> String {
    match v.len() {
        0 => "–".into(),
        1 => format!("{} ± {}", num(v[0]), one_replicate(unit)),
        _ => format!("{} ± {}", num(stats::mean(v)), num(stats::sample_std(v))),
    }
}

/// What a statistic that needs a spread over replicates reads with only one: `n/a (1 seed)`.
pub(crate) fn one_replicate(unit: &str) -> String {
    format!("n/a (1 {unit})")
}

/// How many different η/B an η × B grid has, counting neighbours within `analysis.matched_ratio_tolerance`
/// of each other as one.
pub(crate) fn distinct_ratios(lrs: &[f32], bs: &[usize], analysis: &AnalysisSettings) -> usize {
    let mut ratios: Vec<f64> = lrs.iter().flat_map(|&l| bs.iter().map(move |&b| f64::from(l) / b as f64)).collect();
    ratios.sort_by(f64::total_cmp);
    1 + ratios.windows(2).filter(|w| !analysis.same_ratio(w[0], w[1])).count()
}

/// A share as a percentage with up to 3 significant digits and no trailing zeros: `0.02` → `2 %`.
pub(crate) fn percent(share: f64) -> String {
    let s = num(100.0 * share);
    let s = if s.contains('.') && !s.contains('e') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s} %")
}
