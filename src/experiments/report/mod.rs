//! The claims report of a finished experiment: for each claim of its preset, the claim in one sentence,
//! the statistic that decides it, its value, the verdict at this scale, and the caveats; plus the figures.
//!
//! Verdicts are mechanical, from the statistic and a stated rule (e.g. "Spearman ρ < 0 with p < 0.05"), so
//! a reader can disagree with the rule but not with how it was applied. "Inconclusive" is used when too
//! few models finished for the statistic to exist.

use serde::Serialize;

use super::results::ExperimentResults;
use super::spec::ExperimentKind;
use crate::error::Result;

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
    let _ = &results.config.experiment as &ExperimentKind;
    todo!("report of {}", results.config.id)
}
