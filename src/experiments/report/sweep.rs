//! E1, the η × B sweep: does λ_max (and Tr H, and generalisation) follow η/B, and does it depend on η
//! and B *only* through η/B? Tested per budget (fixed epochs, fixed steps).

use super::{distinct_ratios, group_by, mean_sd, num, one_replicate, percent, spearman_claim, Claim, Generalisation, Report, Verdict};
use crate::error::Result;
use crate::experiments::figures::{heatmap_svg, scatter_svg, Axis, RefKind, RefLine, Series};
use crate::experiments::results::{ExperimentResults, ModelResult};
use crate::experiments::spec::{AnalysisSettings, ExperimentKind};
use crate::experiments::stats;

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let ExperimentKind::RatioSweep { lrs, batch_sizes, .. } = &results.config.experiment else { unreachable!("dispatched on kind") };
    let analysis = &results.config.analysis;
    let conf = analysis.confidence;
    let gen = Generalisation::of(results);
    let one_seed = results.config.seeds.len() == 1;
    let budgets = group_by(results.models(), |m| (m.tag.budget_index, m.tag.budget.clone()));
    for ((bi, budget), models) in &budgets {
        let ok: Vec<&ModelResult> = models.iter().copied().filter(|m| m.ok() && m.lambda_max.is_some_and(|l| l.is_finite() && l > 0.0)).collect();
        let ratio: Vec<f64> = ok.iter().map(|m| m.tag.ratio()).collect();
        let lam: Vec<f64> = ok.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN)).collect();
        let acc: Vec<f64> = ok.iter().map(|m| gen.value(m)).collect();
        let suffix = format!(" [{budget}]");
        r.claims.push(spearman_claim(&format!("Higher η/B gives smaller λ_max (wider minima){suffix}."), "η/B", "λ_max", &ratio, &lam, false, conf));
        if ok.iter().any(|m| m.trace.is_some()) {
            let tr: Vec<f64> = ok.iter().map(|m| m.trace.unwrap_or(f64::NAN)).collect();
            r.claims.push(spearman_claim(&format!("Higher η/B gives a smaller Hessian trace{suffix}."), "η/B", "Tr H", &ratio, &tr, false, conf));
        }
        let better = format!("Higher η/B gives better {}{suffix}.", Generalisation::CLAIMED);
        r.claims.push(gen.guard(spearman_claim(&better, "η/B", Generalisation::CLAIMED, &ratio, &acc, true, conf)));
        r.claims.push(exchangeability_claim(&ok, conf, &suffix));
        r.claims.push(matched_pairs_claim(&ok, analysis, one_seed, &suffix));
        r.tables.push(cell_table(models, lrs, batch_sizes, budget, &gen));
        figures(r, models, lrs, batch_sizes, analysis, *bi, budget, &gen);
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
        let value = format!("fit undefined ({} usable models; it needs at least two learning rates, two batch sizes and more than 3 models)", ok.len());
        return Claim { statement, statistic, value, verdict: Verdict::Inconclusive };
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
    // R² is undefined (0/0) when every λ_max is the same.
    let r2 = if fit.r_squared.is_finite() { num(fit.r_squared) } else { "n/a (λ_max constant)".into() };
    Claim { statement, statistic, value: format!("b = {}, c = {}, b + c = {}, R² = {r2}, n = {}", ci(&b), ci(&c), ci(&bc), fit.n), verdict }
}

/// Cells on the same iso-η/B line (η/B within `analysis.matched_ratio_tolerance`) against the seed-to-seed
/// spread within a cell, in log λ_max.
fn matched_pairs_claim(ok: &[&ModelResult], analysis: &AnalysisSettings, one_seed: bool, suffix: &str) -> Claim {
    let tol = analysis.matched_ratio_tolerance;
    let cells = group_by(ok.iter().copied(), |m| (m.tag.lr.to_bits(), m.tag.batch_size));
    let log_lam = |m: &ModelResult| m.lambda_max.unwrap_or(f64::NAN).ln();
    let mean_log = |ms: &[&ModelResult]| stats::mean(&ms.iter().map(|m| log_lam(m)).collect::<Vec<_>>());
    let mut within = Vec::new();
    for (_, ms) in &cells {
        for i in 0..ms.len() {
            for j in i + 1..ms.len() {
                within.push((log_lam(ms[i]) - log_lam(ms[j])).abs());
            }
        }
    }
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    // The pair of cells with the closest η/B, to name when none lies within the tolerance.
    let mut closest: Option<(f64, &ModelResult, &ModelResult)> = None;
    for i in 0..cells.len() {
        for j in i + 1..cells.len() {
            let (a, b) = (cells[i].1[0], cells[j].1[0]);
            let mismatch = AnalysisSettings::ratio_mismatch(a.tag.ratio(), b.tag.ratio());
            let d = (mean_log(&cells[i].1) - mean_log(&cells[j].1)).abs();
            if mismatch < tol {
                matched.push(d);
            } else {
                unmatched.push(d);
            }
            if closest.is_none_or(|(c, _, _)| mismatch < c) {
                closest = Some((mismatch, a, b));
            }
        }
    }
    let statement = format!("Cells with the same η/B but different η and B reach the same λ_max, up to seed-to-seed variation{suffix}.");
    let statistic = format!(
        "mean |Δ log λ_max| between cell means on the same iso-η/B line (η/B within {}, `analysis.matched_ratio_tolerance`), against the mean |Δ log λ_max| between seeds of one cell; holds if the first is at most twice the second",
        percent(tol)
    );
    let mut missing = Vec::new();
    match closest {
        None => missing.push(format!("n/a: {} finished cell(s), so no pair of cells to compare", cells.len())),
        Some((mismatch, a, b)) if matched.is_empty() => missing.push(format!(
            "no pair of cells within the {} tolerance; closest: {} vs {} (η/B {} vs {}, differ by {})",
            percent(tol),
            cell_name(a),
            cell_name(b),
            num(a.tag.ratio()),
            num(b.tag.ratio()),
            percent(mismatch)
        )),
        Some(_) => {}
    }
    if within.is_empty() {
        missing.push(if one_seed { format!("seed-to-seed spread {}", one_replicate("seed")) } else { "no cell has two finished seeds, so no seed-to-seed spread".into() });
    }
    if !missing.is_empty() {
        return Claim { statement, statistic, value: missing.join("; "), verdict: Verdict::Inconclusive };
    }
    let (m, w, u) = (stats::mean(&matched), stats::mean(&within), stats::mean(&unmatched));
    let verdict = if m <= 2.0 * w { Verdict::Holds } else { Verdict::DoesNotHold };
    let different = if unmatched.is_empty() { "no pairs of different η/B".to_string() } else { format!("pairs of different η/B {} (×{})", num(u), num(u.exp())) };
    Claim {
        statement,
        statistic,
        value: format!("matched-ratio pairs {} (λ ratio ×{}, {} pairs); seeds {} (×{}); {different}", num(m), num(m.exp()), matched.len(), num(w), num(w.exp())),
        verdict,
    }
}

/// `η=0.01, B=50`.
fn cell_name(m: &ModelResult) -> String {
    format!("η={}, B={}", m.tag.lr, m.tag.batch_size)
}

fn cell_table(models: &[&ModelResult], lrs: &[f32], bs: &[usize], budget: &str, gen: &Generalisation) -> String {
    let gen_name = gen.label();
    let mut t = format!("**{budget}**: mean ± standard deviation over seeds of λ_max, Tr H and {gen_name} per cell (diverged models excluded and counted).\n\n| η | B | η/B | steps | λ_max | Tr H | {gen_name} | diverged |\n|---|---|---|---|---|---|---|---|\n");
    for &lr in lrs {
        for &b in bs {
            let cell: Vec<&&ModelResult> = models.iter().filter(|m| m.tag.lr == lr && m.tag.batch_size == b).collect();
            let ok: Vec<&&ModelResult> = cell.iter().copied().filter(|m| m.ok()).collect();
            let ms = |f: &dyn Fn(&ModelResult) -> Option<f64>| {
                let v: Vec<f64> = ok.iter().filter_map(|m| f(m)).filter(|x| x.is_finite()).collect();
                mean_sd(&v, "seed")
            };
            t += &format!(
                "| {lr} | {b} | {} | {} | {} | {} | {} | {} of {} |\n",
                num(f64::from(lr) / b as f64),
                cell.first().map_or(0, |m| m.steps),
                ms(&|m| m.lambda_max),
                ms(&|m| m.trace),
                ms(&|m| Some(gen.value(m))),
                cell.len() - ok.len(),
                cell.len()
            );
        }
    }
    t
}

#[allow(clippy::too_many_arguments)]
fn figures(r: &mut Report, models: &[&ModelResult], lrs: &[f32], bs: &[usize], analysis: &AnalysisSettings, bi: usize, budget: &str, gen: &Generalisation) {
    let tag = format!("-{}", bi);
    // A plot against η/B says nothing when every cell has the same η/B; and the heatmaps' iso-η/B lines are
    // placed by interpolating between cells, which needs two rows and two columns.
    if distinct_ratios(lrs, bs, analysis) < 2 {
        let mut names = vec![format!("lambda-max-vs-ratio{tag}"), format!("accuracy-vs-ratio{tag}")];
        if models.iter().any(|m| m.trace.is_some()) {
            names.insert(1, format!("trace-vs-ratio{tag}"));
        }
        r.skip_figures(&names, &format!("they plot against η/B, and every cell of this grid has the same η/B ({})", num(f64::from(lrs[0]) / bs[0] as f64)));
    } else {
        ratio_figures(r, models, bs, &tag, budget, gen);
    }
    if lrs.len() < 2 || bs.len() < 2 {
        r.skip_figures(
            &[format!("lambda-max-heatmap{tag}"), format!("accuracy-heatmap{tag}")],
            &format!("their iso-η/B lines need at least two learning rates and two batch sizes, and this grid has {} × {}", lrs.len(), bs.len()),
        );
    } else {
        heatmaps(r, models, lrs, bs, &tag, budget, gen);
    }
}

/// λ_max, Tr H and the accuracy against η/B, one point per model, one colour per B.
fn ratio_figures(r: &mut Report, models: &[&ModelResult], bs: &[usize], tag: &str, budget: &str, gen: &Generalisation) {
    let gen_name = gen.label();
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
    r.add_figure(
        format!("lambda-max-vs-ratio{tag}"),
        format!("λ_max against η/B, one point per model ({budget})"),
        scatter_svg(&format!("λ_max vs η/B ({budget})"), &ratio_axis, &Axis { label: "λ_max".into(), log: true }, &by_b(&|m| m.lambda_max), &[]),
    );
    if models.iter().any(|m| m.trace.is_some()) {
        r.add_figure(
            format!("trace-vs-ratio{tag}"),
            format!("Hessian trace against η/B ({budget})"),
            scatter_svg(&format!("Tr H vs η/B ({budget})"), &ratio_axis, &Axis { label: "Tr H".into(), log: true }, &by_b(&|m| m.trace), &[]),
        );
    }
    r.add_figure(
        format!("accuracy-vs-ratio{tag}"),
        format!("{gen_name} against η/B ({budget})"),
        scatter_svg(&format!("{gen_name} vs η/B ({budget})"), &ratio_axis, &Axis { label: gen_name.clone(), log: false }, &by_b(&|m| Some(gen.value(m))), &[]),
    );
}

/// Mean λ_max and accuracy per cell of the η × B grid, with three iso-η/B lines across the grid's ratios.
fn heatmaps(r: &mut Report, models: &[&ModelResult], lrs: &[f32], bs: &[usize], tag: &str, budget: &str, gen: &Generalisation) {
    let gen_name = gen.label();
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
    r.add_figure(
        format!("lambda-max-heatmap{tag}"),
        format!("Mean λ_max over seeds on the η × B grid, with iso-η/B lines ({budget}); crossed cells: every seed diverged"),
        heatmap_svg(&format!("λ_max ({budget})"), &b_axis, &xs, &lr_axis, &ys, &cell_mean(&|m| m.lambda_max), "λ_max", &isos),
    );
    r.add_figure(
        format!("accuracy-heatmap{tag}"),
        format!("Mean {gen_name} over seeds on the η × B grid, with iso-η/B lines ({budget})"),
        heatmap_svg(&format!("{gen_name} ({budget})"), &b_axis, &xs, &lr_axis, &ys, &cell_mean(&|m| Some(gen.value(m))), &gen_name, &isos),
    );
}
