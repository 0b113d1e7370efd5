//! E6, where "only η/B matters" breaks: η and B both scaled by β at a fixed ratio, for several N. The
//! SDE noise scale η/B ignores the finite-sample factor; Smith & Le's g = η(N/B − 1) keeps it, so g should
//! predict λ_max where η/B (constant here) cannot.

use super::{group_by, mean_sd, num, one_replicate, spearman_claim, Claim, Generalisation, Report, Verdict};
use crate::error::Result;
use crate::experiments::figures::{scatter_svg, Axis, Series};
use crate::experiments::results::{ExperimentResults, ModelResult};
use crate::experiments::stats;

/// Smith & Le's noise scale g = η(N/B − 1).
fn noise_scale(m: &ModelResult) -> f64 {
    f64::from(m.tag.lr) * (m.tag.train_size as f64 / m.tag.batch_size as f64 - 1.0)
}

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let conf = results.config.analysis.confidence;
    let gen = Generalisation::of(results);
    let gen_name = gen.label();
    let one_seed = results.config.seeds.len() == 1;
    let ok: Vec<&ModelResult> = results.models().filter(|m| m.ok() && m.lambda_max.is_some_and(|l| l.is_finite() && l > 0.0)).collect();
    let g: Vec<f64> = ok.iter().map(|m| noise_scale(m)).collect();
    let lam: Vec<f64> = ok.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN)).collect();
    r.claims.push(spearman_claim("At a fixed η/B, the noise scale g = η(N/B − 1) still orders the minima: larger g, smaller λ_max.", "g = η(N/B − 1)", "λ_max", &g, &lam, false, conf));
    let by_n = group_by(ok.iter().copied(), |m| m.tag.train_size);
    let mut breaks = Vec::new();
    let mut table = format!("| N | β | η | B | B/N | g = η(N/B−1) | λ_max (mean ± sd) | {gen_name} (mean) |\n|---|---|---|---|---|---|---|---|\n");
    for (n, ms) in &by_n {
        let cells = group_by(ms.iter().copied(), |m| m.tag.beta.map(f64::to_bits));
        let logs: Vec<(f64, Vec<f64>)> = cells.iter().map(|(b, c)| (f64::from_bits(b.unwrap_or(0)), c.iter().map(|m| m.lambda_max.unwrap_or(f64::NAN).ln()).collect())).collect();
        let pooled = {
            let within: Vec<f64> = logs.iter().filter(|(_, v)| v.len() >= 2).map(|(_, v)| stats::sample_std(v).powi(2)).collect();
            if within.is_empty() { f64::NAN } else { stats::mean(&within).sqrt() }
        };
        let base = logs.first().map(|(_, v)| stats::mean(v));
        let first_break = logs.iter().skip(1).find(|(_, v)| base.is_some_and(|b0| (stats::mean(v) - b0).abs() > 2.0 * pooled)).map(|(beta, _)| *beta);
        breaks.push((*n, first_break, pooled));
        for (_, c) in &cells {
            let m0 = c[0];
            let l: Vec<f64> = c.iter().filter_map(|m| m.lambda_max).collect();
            let a: Vec<f64> = c.iter().map(|m| gen.value(m)).collect();
            table += &format!(
                "| {n} | {} | {} | {} | {} | {} | {} | {} |\n",
                m0.tag.beta.map_or("–".into(), num),
                m0.tag.lr,
                m0.tag.batch_size,
                num(m0.tag.batch_size as f64 / *n as f64),
                num(noise_scale(m0)),
                mean_sd(&l, "seed"),
                num(stats::mean(&a))
            );
        }
    }
    r.tables.push(table);
    let statement = "λ_max stays at its small-β value while B ≪ N and departs as B/N grows, so the departure comes at a smaller β for a smaller N.".to_string();
    let statistic = "per N, the first β whose mean log λ_max differs from the smallest β's by more than twice the pooled seed standard deviation; holds if it is smaller for the smallest N than for the largest (no departure counts as beyond the grid)".to_string();
    // Without a seed spread (one seed, or one finished seed per cell) there is no yardstick for a departure.
    let value = breaks
        .iter()
        .map(|(n, b, s)| match (b, s.is_finite()) {
            (_, false) if one_seed => format!("N = {n}: {} (no seed spread to measure a departure against)", one_replicate("seed")),
            (_, false) => format!("N = {n}: n/a (no cell has two finished seeds, so no seed spread)"),
            (b, true) => format!("N = {n}: {} (seed sd of log λ {})", b.map_or("no departure".into(), |b| format!("β = {}", num(b))), num(*s)),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let verdict = match (breaks.iter().min_by_key(|b| b.0), breaks.iter().max_by_key(|b| b.0)) {
        (Some(small), Some(large)) if small.0 != large.0 && !small.2.is_nan() => match (small.1, large.1) {
            (None, None) => Verdict::Inconclusive,
            (Some(_), None) => Verdict::Holds,
            (Some(a), Some(b)) if a < b => Verdict::Holds,
            _ => Verdict::DoesNotHold,
        },
        _ => Verdict::Inconclusive,
    };
    r.claims.push(Claim { statement, statistic, value, verdict });
    let series = |f: &dyn Fn(&ModelResult) -> (f64, f64)| -> Vec<Series> {
        by_n.iter().map(|(n, ms)| Series { name: format!("N = {n}"), points: ms.iter().map(|m| f(m)).collect(), errors: None, dashed: false }).collect()
    };
    let lam_axis = Axis { label: "λ_max".into(), log: true };
    r.add_figure(
        "lambda-max-vs-beta",
        "λ_max against β (η and B both ×β, η/B fixed), one point per model",
        scatter_svg("λ_max vs β at fixed η/B", &Axis { label: "β".into(), log: true }, &lam_axis, &series(&|m| (m.tag.beta.unwrap_or(f64::NAN), m.lambda_max.unwrap_or(f64::NAN))), &[]),
    );
    r.add_figure(
        "lambda-max-vs-noise-scale",
        "λ_max against Smith & Le's noise scale g = η(N/B − 1) (η/B is the same for every point)",
        scatter_svg("λ_max vs g = η(N/B − 1)", &Axis { label: "g = η(N/B − 1)".into(), log: true }, &lam_axis, &series(&|m| (noise_scale(m), m.lambda_max.unwrap_or(f64::NAN))), &[]),
    );
    r.add_figure(
        "accuracy-vs-beta",
        format!("{gen_name} against β"),
        scatter_svg(&format!("{gen_name} vs β"), &Axis { label: "β".into(), log: true }, &Axis { label: gen_name.clone(), log: false }, &series(&|m| (m.tag.beta.unwrap_or(f64::NAN), gen.value(m))), &[]),
    );
    r.caveats.push("All models here train for the same number of epochs, so larger β means fewer steps; part of a departure at large β can be under-training rather than sharper minima (compare the training losses in the table).".into());
    Ok(())
}
