//! E1, the η × B sweep: does λ_max (and Tr H, and generalisation) follow η/B, and does it depend on η
//! and B *only* through η/B? Tested per budget (fixed epochs, fixed steps).

use super::{generalisation, generalisation_name, group_by, num, spearman_claim, Claim, Figure, Report, Verdict};
use crate::error::Result;
use crate::experiments::figures::{heatmap_svg, scatter_svg, Axis, RefKind, RefLine, Series};
use crate::experiments::results::{ExperimentResults, ModelResult};
use crate::experiments::spec::ExperimentKind;
use crate::experiments::stats;

/// Relative tolerance under which two cells count as having the same η/B.
const SAME_RATIO: f64 = 0.02;

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let ExperimentKind::RatioSweep { lrs, batch_sizes, .. } = &results.config.experiment else { unreachable!("dispatched on kind") };
    let conf = results.config.analysis.confidence;
    let gen_name = generalisation_name(results);
    let budgets = group_by(results.models(), |m| (m.tag.budget_index, m.tag.budget.clone()));
    for ((bi, budget), models) in &budgets {
        let ok: Vec<&ModelResult> = models.iter().copied().filter(|m| m.ok() && m.lambda_max.is_some_and(|l| l.is_finite() && l > 0.0)).collect();
        let ratio: Vec<f64> = ok.iter().map(|m| m.tag.ratio()).collect();
        let lam: Vec<f64> = ok.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN)).collect();
        let acc: Vec<f64> = ok.iter().map(|m| generalisation(m)).collect();
        let suffix = format!(" [{budget}]");
        r.claims.push(spearman_claim(&format!("Higher η/B gives smaller λ_max (wider minima){suffix}."), "η/B", "λ_max", &ratio, &lam, false, conf));
        if ok.iter().any(|m| m.trace.is_some()) {
            let tr: Vec<f64> = ok.iter().map(|m| m.trace.unwrap_or(f64::NAN)).collect();
            r.claims.push(spearman_claim(&format!("Higher η/B gives a smaller Hessian trace{suffix}."), "η/B", "Tr H", &ratio, &tr, false, conf));
        }
        r.claims.push(spearman_claim(&format!("Higher η/B gives better {gen_name}{suffix}."), "η/B", gen_name, &ratio, &acc, true, conf));
        r.claims.push(exchangeability_claim(&ok, conf, &suffix));
        r.claims.push(matched_pairs_claim(&ok, &suffix));
        r.tables.push(cell_table(models, lrs, batch_sizes, budget, gen_name));
        figures(r, models, lrs, batch_sizes, *bi, budget, gen_name)?;
    }
    if budgets.len() > 1 {
        r.caveats.push(
            "With a fixed number of epochs a model with batch B takes N/B steps per epoch, so η/B ∝ η × steps: a ratio effect cannot be told from a training-length effect. The fixed-steps budget removes that confound but gives large-B models more epochs; compare the verdicts of both budgets.".into(),
        );
    } else if matches!(results.config.budget, crate::experiments::spec::Budget::Epochs(_)) {
        r.caveats.push("Only a fixed-epochs budget ran: η/B ∝ η × steps, so a ratio effect cannot be told from a training-length effect (add `extra_budgets: [{\"steps\": …}]`).".into());
    }
    Ok(())
}

/// `log λ_max = a + b·log η + c·log B`: only the ratio matters when b + c = 0 (and b < 0).
fn exchangeability_claim(ok: &[&ModelResult], conf: f64, suffix: &str) -> Claim {
    let rows: Vec<Vec<f64>> = ok.iter().map(|m| vec![1.0, f64::from(m.tag.lr).ln(), (m.tag.batch_size as f64).ln()]).collect();
    let y: Vec<f64> = ok.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN).ln()).collect();
    let statistic = format!(
        "least-squares fit log λ_max = a + b·log η + c·log B over finished models; holds if the {:.0} % interval of b + c contains 0 while b's lies below 0",
        100.0 * conf
    );
    let statement = format!("λ_max depends on η and B only through η/B{suffix}.");
    let Some(fit) = stats::ols(&rows, &y) else {
        return Claim { statement, statistic, value: format!("fit undefined ({} usable models)", ok.len()), verdict: Verdict::Inconclusive };
    };
    let b = fit.combination(&[0.0, 1.0, 0.0], conf);
    let c = fit.combination(&[0.0, 0.0, 1.0], conf);
    let bc = fit.combination(&[0.0, 1.0, 1.0], conf);
    let ci = |e: &stats::Estimate| format!("{} [{}, {}]", num(e.value), num(e.ci_low), num(e.ci_high));
    let verdict = if !bc.ci_low.is_finite() {
        Verdict::Inconclusive
    } else if bc.ci_low <= 0.0 && 0.0 <= bc.ci_high && b.ci_high < 0.0 {
        Verdict::Holds
    } else {
        Verdict::DoesNotHold
    };
    Claim { statement, statistic, value: format!("b = {}, c = {}, b + c = {}, R² = {}, n = {}", ci(&b), ci(&c), ci(&bc), num(fit.r_squared), fit.n), verdict }
}

/// Cells on the same iso-η/B line against the seed-to-seed spread within a cell, in log λ_max.
fn matched_pairs_claim(ok: &[&ModelResult], suffix: &str) -> Claim {
    let cells = group_by(ok.iter().copied(), |m| (m.tag.lr.to_bits(), m.tag.batch_size));
    let mean_log = |ms: &[&ModelResult]| stats::mean(&ms.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN).ln()).collect::<Vec<_>>());
    let mut within = Vec::new();
    for (_, ms) in &cells {
        for i in 0..ms.len() {
            for j in i + 1..ms.len() {
                within.push((ms[i].lambda_max.unwrap_or(f64::NAN).ln() - ms[j].lambda_max.unwrap_or(f64::NAN).ln()).abs());
            }
        }
    }
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for i in 0..cells.len() {
        for j in i + 1..cells.len() {
            let (ri, rj) = (cells[i].1[0].tag.ratio(), cells[j].1[0].tag.ratio());
            let d = (mean_log(&cells[i].1) - mean_log(&cells[j].1)).abs();
            if ((ri - rj) / ri).abs() < SAME_RATIO {
                matched.push(d);
            } else {
                unmatched.push(d);
            }
        }
    }
    let statement = format!("Cells with the same η/B but different η and B reach the same λ_max, up to seed-to-seed variation{suffix}.");
    let statistic = "mean |Δ log λ_max| between cell means on the same iso-η/B line, against the mean |Δ log λ_max| between seeds of one cell; holds if the first is at most twice the second".to_string();
    if matched.is_empty() || within.is_empty() {
        return Claim { statement, statistic, value: format!("undefined: {} matched pairs, {} seed pairs", matched.len(), within.len()), verdict: Verdict::Inconclusive };
    }
    let (m, w, u) = (stats::mean(&matched), stats::mean(&within), stats::mean(&unmatched));
    let verdict = if m <= 2.0 * w { Verdict::Holds } else { Verdict::DoesNotHold };
    Claim {
        statement,
        statistic,
        value: format!(
            "matched-ratio pairs {} (λ ratio ×{}, {} pairs); seeds {} (×{}); pairs of different η/B {} (×{})",
            num(m),
            num(m.exp()),
            matched.len(),
            num(w),
            num(w.exp()),
            num(u),
            num(u.exp())
        ),
        verdict,
    }
}

fn cell_table(models: &[&ModelResult], lrs: &[f32], bs: &[usize], budget: &str, gen_name: &str) -> String {
    let mut t = format!("**{budget}**: mean ± standard deviation over seeds of λ_max, Tr H and {gen_name} per cell (diverged models excluded and counted).\n\n| η | B | η/B | steps | λ_max | Tr H | {gen_name} | diverged |\n|---|---|---|---|---|---|---|---|\n");
    for &lr in lrs {
        for &b in bs {
            let cell: Vec<&&ModelResult> = models.iter().filter(|m| m.tag.lr == lr && m.tag.batch_size == b).collect();
            let ok: Vec<&&ModelResult> = cell.iter().copied().filter(|m| m.ok()).collect();
            let ms = |f: &dyn Fn(&ModelResult) -> Option<f64>| {
                let v: Vec<f64> = ok.iter().filter_map(|m| f(m)).filter(|x| x.is_finite()).collect();
                if v.is_empty() {
                    "–".to_string()
                } else {
                    format!("{} ± {}", num(stats::mean(&v)), num(stats::sample_std(&v)))
                }
            };
            t += &format!(
                "| {lr} | {b} | {} | {} | {} | {} | {} | {} of {} |\n",
                num(f64::from(lr) / b as f64),
                cell.first().map_or(0, |m| m.steps),
                ms(&|m| m.lambda_max),
                ms(&|m| m.trace),
                ms(&|m| Some(generalisation(m))),
                cell.len() - ok.len(),
                cell.len()
            );
        }
    }
    t
}

fn figures(r: &mut Report, models: &[&ModelResult], lrs: &[f32], bs: &[usize], bi: usize, budget: &str, gen_name: &str) -> Result<()> {
    let ratio_axis = Axis { label: "η/B".into(), log: true };
    let by_b = |f: &dyn Fn(&ModelResult) -> Option<f64>| -> Vec<Series> {
        bs.iter()
            .map(|&b| Series {
                name: format!("B = {b}"),
                points: models.iter().filter(|m| m.tag.batch_size == b && m.ok()).map(|m| (m.tag.ratio(), f(m).unwrap_or(f64::NAN))).collect(),
                errors: None,
                dashed: false,
            })
            .collect()
    };
    let tag = format!("-{}", bi);
    r.figures.push(Figure {
        name: format!("lambda-max-vs-ratio{tag}"),
        title: format!("λ_max against η/B, one point per model ({budget})"),
        svg: scatter_svg(&format!("λ_max vs η/B ({budget})"), &ratio_axis, &Axis { label: "λ_max".into(), log: true }, &by_b(&|m| m.lambda_max), &[])?,
    });
    if models.iter().any(|m| m.trace.is_some()) {
        r.figures.push(Figure {
            name: format!("trace-vs-ratio{tag}"),
            title: format!("Hessian trace against η/B ({budget})"),
            svg: scatter_svg(&format!("Tr H vs η/B ({budget})"), &ratio_axis, &Axis { label: "Tr H".into(), log: true }, &by_b(&|m| m.trace), &[])?,
        });
    }
    r.figures.push(Figure {
        name: format!("accuracy-vs-ratio{tag}"),
        title: format!("{gen_name} against η/B ({budget})"),
        svg: scatter_svg(&format!("{gen_name} vs η/B ({budget})"), &ratio_axis, &Axis { label: gen_name.into(), log: false }, &by_b(&|m| Some(generalisation(m))), &[])?,
    });
    let xs: Vec<f64> = bs.iter().map(|&b| b as f64).collect();
    let ys: Vec<f64> = lrs.iter().map(|&l| f64::from(l)).collect();
    let cell_mean = |f: &dyn Fn(&ModelResult) -> Option<f64>| -> Vec<f64> {
        let mut v = Vec::new();
        for &lr in lrs {
            for &b in bs {
                let vals: Vec<f64> = models.iter().filter(|m| m.tag.lr == lr && m.tag.batch_size == b && m.ok()).filter_map(|m| f(m)).filter(|x| x.is_finite()).collect();
                v.push(if vals.is_empty() { f64::NAN } else { stats::mean(&vals) });
            }
        }
        v
    };
    let mut ratios: Vec<f64> = lrs.iter().flat_map(|&l| bs.iter().map(move |&b| f64::from(l) / b as f64)).collect();
    ratios.sort_by(f64::total_cmp);
    let (lo, hi) = (ratios[0], ratios[ratios.len() - 1]);
    let isos: Vec<RefLine> = (0..3).map(|i| lo * (hi / lo).powf((i as f64 + 0.5) / 3.0)).map(|r| RefLine { label: format!("η/B = {}", num(r)), kind: RefKind::Proportional(r) }).collect();
    let b_axis = Axis { label: "batch size B".into(), log: true };
    let lr_axis = Axis { label: "learning rate η".into(), log: true };
    r.figures.push(Figure {
        name: format!("lambda-max-heatmap{tag}"),
        title: format!("Mean λ_max over seeds on the η × B grid, with iso-η/B lines ({budget}); crossed cells: every seed diverged"),
        svg: heatmap_svg(&format!("λ_max ({budget})"), &b_axis, &xs, &lr_axis, &ys, &cell_mean(&|m| m.lambda_max), "λ_max", &isos)?,
    });
    r.figures.push(Figure {
        name: format!("accuracy-heatmap{tag}"),
        title: format!("Mean {gen_name} over seeds on the η × B grid, with iso-η/B lines ({budget})"),
        svg: heatmap_svg(&format!("{gen_name} ({budget})"), &b_axis, &xs, &lr_axis, &ys, &cell_mean(&|m| Some(generalisation(m))), gen_name, &isos)?,
    });
    Ok(())
}
