//! E2/E3, interpolation between minima: with different η/B the larger-ratio minimum should be the wider
//! one (E2); with equal η/B the minima should look alike (E3). Which claim is tested follows from the
//! settings: all ratios equal → E3, otherwise E2.

use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::{group_by, mean_sd, num, one_replicate, spearman_claim, Claim, Generalisation, Report, Verdict};
use crate::error::Result;
use crate::experiments::figures::{lines_svg, scatter_svg, Axis, RefKind, RefLine, Series};
use crate::experiments::results::{ExperimentResults, InterpolationResult, ModelResult};
use crate::experiments::spec::{AnalysisSettings, ExperimentKind, Setting};
use crate::experiments::stats;

/// How far outside each minimum the rise of the loss is read, in units of the distance between them.
const OUTWARD: f64 = 0.5;

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let ExperimentKind::Interpolation { settings, .. } = &results.config.experiment else { unreachable!("dispatched on kind") };
    let analysis = &results.config.analysis;
    let conf = analysis.confidence;
    let ratios: Vec<f64> = settings.iter().map(|s| f64::from(s.lr) / s.batch_size as f64).collect();
    let equal = ratios.iter().all(|&x| analysis.same_ratio(x, ratios[0]));
    let ok: Vec<&ModelResult> = results.models().filter(|m| m.ok() && m.lambda_max.is_some_and(|l| l.is_finite() && l > 0.0)).collect();
    let gen = Generalisation::of(results);
    let one_seed = results.config.seeds.len() == 1;
    if equal {
        r.claims.push(anova_claim(
            "Minima found with the same η/B have the same λ_max, whatever η and B are separately.",
            "log λ_max",
            &ok,
            |m| m.lambda_max.unwrap_or(f64::NAN).ln(),
            conf,
            one_seed,
        ));
        let same = format!("They reach the same {}.", Generalisation::CLAIMED);
        r.claims.push(gen.guard(anova_claim(&same, Generalisation::CLAIMED, &ok, |m| gen.value(m), conf, one_seed)));
        r.claims.push(symmetry_claim(&results.interpolations));
        r.caveats.push("'Holds' for the equal-ratio claims means that no difference was detected with these seeds (a one-way ANOVA that fails to reject); more seeds could reveal a small one.".into());
    } else {
        let x: Vec<f64> = ok.iter().map(|m| m.tag.ratio()).collect();
        let y: Vec<f64> = ok.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN)).collect();
        r.claims.push(spearman_claim("The minimum found with the larger η/B is wider (smaller λ_max).", "η/B", "λ_max", &x, &y, false, conf));
        let g: Vec<f64> = ok.iter().map(|m| gen.value(m)).collect();
        let better = format!("The larger η/B generalises better ({}).", Generalisation::CLAIMED);
        r.claims.push(gen.guard(spearman_claim(&better, "η/B", Generalisation::CLAIMED, &x, &g, true, conf)));
        r.claims.push(wider_end_claim(&results.interpolations, settings, analysis));
    }
    r.tables.push(setting_table(results, settings, &gen));
    figures(results, settings, r);
    Ok(())
}

/// One-way ANOVA across settings: holds when no difference is detected (p ≥ 1 − confidence).
fn anova_claim(statement: &str, what: &str, ok: &[&ModelResult], f: impl Fn(&ModelResult) -> f64, conf: f64, one_seed: bool) -> Claim {
    let groups: Vec<Vec<f64>> = group_by(ok.iter().copied(), |m| m.tag.setting).into_iter().map(|(_, ms)| ms.iter().map(|m| f(m)).filter(|v| v.is_finite()).collect()).collect();
    let statistic = format!("one-way ANOVA of {what} across the settings (seeds as replicates); holds if p ≥ {}", super::alpha(conf));
    match anova(&groups) {
        Some((fstat, p, df1, df2)) => Claim {
            statement: statement.into(),
            statistic,
            value: format!("F({df1}, {df2}) = {}, p = {}; setting means {}", num(fstat), num(p), groups.iter().map(|g| num(stats::mean(g))).collect::<Vec<_>>().join(", ")),
            verdict: if p >= 1.0 - conf { Verdict::Holds } else { Verdict::DoesNotHold },
        },
        None => {
            let value = if one_seed { format!("{}: the ANOVA needs at least 2 seeds per setting", one_replicate("seed")) } else { "undefined: each setting needs at least 2 finished seeds, and some spread among them".into() };
            Claim { statement: statement.into(), statistic, value, verdict: Verdict::Inconclusive }
        }
    }
}

/// `(F, p, df between, df within)` of a one-way ANOVA, or None when a group has fewer than 2 values or
/// there is no within-group variation.
pub(crate) fn anova(groups: &[Vec<f64>]) -> Option<(f64, f64, usize, usize)> {
    let k = groups.len();
    let n: usize = groups.iter().map(Vec::len).sum();
    if k < 2 || groups.iter().any(|g| g.len() < 2) {
        return None;
    }
    let grand = groups.iter().flatten().sum::<f64>() / n as f64;
    let ssb: f64 = groups.iter().map(|g| g.len() as f64 * (stats::mean(g) - grand).powi(2)).sum();
    let ssw: f64 = groups.iter().map(|g| {
        let m = stats::mean(g);
        g.iter().map(|v| (v - m).powi(2)).sum::<f64>()
    }).sum();
    let (df1, df2) = (k - 1, n - k);
    if ssw <= 0.0 || df2 == 0 {
        return None;
    }
    let f = (ssb / df1 as f64) / (ssw / df2 as f64);
    let p = 1.0 - FisherSnedecor::new(df1 as f64, df2 as f64).ok()?.cdf(f);
    Some((f, p, df1, df2))
}

/// Training loss at α = −OUTWARD, 0, 1 and 1 + OUTWARD (the nearest grid points, which must lie within
/// half a grid step).
fn end_losses(i: &InterpolationResult) -> Option<[f64; 4]> {
    let step = (i.alphas.get(1)? - i.alphas[0]).abs();
    let at = |a: f64| -> Option<f64> {
        let (idx, d) = i.alphas.iter().enumerate().map(|(k, x)| (k, (x - a).abs())).min_by(|p, q| p.1.total_cmp(&q.1))?;
        (d < 0.51 * step).then(|| i.train_loss[idx])
    };
    Some([at(-OUTWARD)?, at(0.0)?, at(1.0)?, at(1.0 + OUTWARD)?])
}

/// Rise of the training loss `OUTWARD` beyond each end of an interpolation: `(rise at α = −OUTWARD, rise at 1 + OUTWARD)`.
pub(crate) fn rises(i: &InterpolationResult) -> Option<(f64, f64)> {
    let [l, a, b, r] = end_losses(i)?;
    Some((l - a, r - b))
}

/// Training loss `OUTWARD` beyond each end: `(L(−OUTWARD), L(1 + OUTWARD))`.
fn outward_losses(i: &InterpolationResult) -> Option<(f64, f64)> {
    let [l, _, _, r] = end_losses(i)?;
    Some((l, r))
}

fn wider_end_claim(interps: &[InterpolationResult], settings: &[Setting], analysis: &AnalysisSettings) -> Claim {
    let ratio = |s: usize| f64::from(settings[s].lr) / settings[s].batch_size as f64;
    let mut agree = 0;
    let mut total = 0;
    let mut details = Vec::new();
    for i in interps {
        if let Some((left, right)) = rises(i) {
            let (r0, r1) = (ratio(i.settings[0]), ratio(i.settings[1]));
            // A pair of equal η/B has no larger-η/B end to test.
            if analysis.same_ratio(r0, r1) {
                continue;
            }
            total += 1;
            let larger_rises_less = if r0 > r1 { left < right } else { right < left };
            agree += usize::from(larger_rises_less);
            details.push(format!("{} vs {} (seed {}): {} vs {}", settings[i.settings[0]].name(), settings[i.settings[1]].name(), i.seed, num(left), num(right)));
        }
    }
    let statement = format!("Along the line between two minima, the loss rises more slowly beyond the larger-η/B end (its basin is wider), measured {OUTWARD} of the distance outside each end.");
    let statistic = "the share of interpolations in which the larger-η/B end has the smaller rise of training loss; holds if it is every one of them (at least 2)".to_string();
    let verdict = if total < 2 { Verdict::Inconclusive } else if agree == total { Verdict::Holds } else { Verdict::DoesNotHold };
    Claim { statement, statistic, value: format!("{agree} of {total}; rises (first end vs second): {}", details.join("; ")), verdict }
}

fn symmetry_claim(interps: &[InterpolationResult]) -> Claim {
    let mut ratios = Vec::new();
    for i in interps {
        if let Some((l, r)) = outward_losses(i) {
            ratios.push(if l > 0.0 && r > 0.0 { l.max(r) / l.min(r) } else { f64::INFINITY });
        }
    }
    let statement = format!("Between minima of equal η/B the interpolation is symmetric: the loss {OUTWARD} of the distance beyond either end is alike.");
    let statistic = format!("the larger over the smaller training loss at α = −{OUTWARD} and α = {}, per interpolation; holds if every ratio is below 2", 1.0 + OUTWARD);
    let verdict = if ratios.is_empty() { Verdict::Inconclusive } else if ratios.iter().all(|&x| x < 2.0) { Verdict::Holds } else { Verdict::DoesNotHold };
    Claim { statement, statistic, value: format!("ratios {}", ratios.iter().map(|&x| num(x)).collect::<Vec<_>>().join(", ")), verdict }
}

fn setting_table(results: &ExperimentResults, settings: &[Setting], gen: &Generalisation) -> String {
    let gen_name = gen.label();
    let mut t = format!("| setting | η/B | λ_max (mean ± sd) | {gen_name} | train loss | diverged |\n|---|---|---|---|---|---|\n");
    for (si, s) in settings.iter().enumerate() {
        let all: Vec<&ModelResult> = results.models().filter(|m| m.tag.setting == Some(si)).collect();
        let ok: Vec<&ModelResult> = all.iter().copied().filter(|m| m.ok()).collect();
        let ms = |v: Vec<f64>| mean_sd(&v, "seed");
        t += &format!(
            "| {} | {} | {} | {} | {} | {} of {} |\n",
            s.name(),
            num(f64::from(s.lr) / s.batch_size as f64),
            ms(ok.iter().filter_map(|m| m.lambda_max).collect()),
            ms(ok.iter().map(|m| gen.value(m)).collect()),
            ms(ok.iter().map(|m| m.last.train_loss).collect()),
            all.len() - ok.len(),
            all.len()
        );
    }
    t
}

fn figures(results: &ExperimentResults, settings: &[Setting], r: &mut Report) {
    let alpha = Axis { label: "α  ((1−α)·θ₁ + α·θ₂)".into(), log: false };
    let ends = |a: &str, b: &str| vec![RefLine { label: format!("θ₁: {a}"), kind: RefKind::Vertical(0.0) }, RefLine { label: format!("θ₂: {b}"), kind: RefKind::Vertical(1.0) }];
    for ([a, b], group) in group_by(results.interpolations.iter(), |i| i.settings) {
        let (na, nb) = (settings[a].name(), settings[b].name());
        let mut loss = Vec::new();
        let mut acc = Vec::new();
        for i in &group {
            loss.push(Series { name: format!("train, seed {}", i.seed), points: i.alphas.iter().copied().zip(i.train_loss.iter().copied()).collect(), errors: None, dashed: false });
            if !i.validation_loss.is_empty() {
                loss.push(Series { name: format!("validation, seed {}", i.seed), points: i.alphas.iter().copied().zip(i.validation_loss.iter().copied()).collect(), errors: None, dashed: true });
            }
            acc.push(Series { name: format!("train, seed {}", i.seed), points: i.alphas.iter().copied().zip(i.train_accuracy.iter().copied()).collect(), errors: None, dashed: false });
            if !i.validation_accuracy.is_empty() {
                acc.push(Series { name: format!("validation, seed {}", i.seed), points: i.alphas.iter().copied().zip(i.validation_accuracy.iter().copied()).collect(), errors: None, dashed: true });
            }
        }
        r.add_figure(
            format!("interpolation-loss-{a}-{b}"),
            format!("Loss along (1−α)·θ₁ + α·θ₂, θ₁ from {na}, θ₂ from {nb}"),
            lines_svg(&format!("loss: {na} → {nb}"), &alpha, &Axis { label: "cross-entropy (log)".into(), log: true }, &loss, &ends(&na, &nb)),
        );
        r.add_figure(
            format!("interpolation-accuracy-{a}-{b}"),
            format!("Accuracy along the same line, {na} → {nb}"),
            lines_svg(&format!("accuracy: {na} → {nb}"), &alpha, &Axis { label: "accuracy".into(), log: false }, &acc, &ends(&na, &nb)),
        );
    }
    let series: Vec<Series> = settings
        .iter()
        .enumerate()
        .map(|(si, s)| Series {
            name: s.name(),
            points: results.models().filter(|m| m.tag.setting == Some(si) && m.ok()).map(|m| (m.tag.ratio(), m.lambda_max.unwrap_or(f64::NAN))).collect(),
            errors: None,
            dashed: false,
        })
        .collect();
    r.add_figure(
        "lambda-max-by-setting",
        "λ_max of every minimum against its η/B (one point per seed)",
        scatter_svg("λ_max per setting", &Axis { label: "η/B".into(), log: true }, &Axis { label: "λ_max".into(), log: true }, &series, &[]),
    );
}
