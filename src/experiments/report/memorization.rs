//! E5, memorisation of random labels: a higher η/B should fit the replaced labels less (lower accuracy on
//! them) and generalise better on clean validation data. Tested per random-label share and momentum.

use super::{distinct_ratios, group_by, mean_sd, num, spearman_claim, Generalisation, Report};
use crate::error::Result;
use crate::experiments::figures::{lines_svg, scatter_svg, Axis, Series};
use crate::experiments::results::{ExperimentResults, ModelResult};
use crate::experiments::spec::ExperimentKind;
use crate::experiments::stats;

/// Best validation accuracy during training (memorisation lowers it late in training).
fn best_validation(m: &ModelResult) -> f64 {
    m.curve.iter().filter_map(|p| p.validation_accuracy).fold(f64::NAN, f64::max)
}

/// Validation accuracy at the point of training where the accuracy on the random labels first reaches
/// `level` (linear between evaluations), or None if it never does.
fn validation_at_memorisation(m: &ModelResult, level: f64) -> Option<f64> {
    let pts: Vec<(f64, f64)> = m.curve.iter().filter_map(|p| Some((p.corrupted_accuracy?, p.validation_accuracy?))).collect();
    let mut prev: Option<(f64, f64)> = None;
    for &(c, v) in &pts {
        if c >= level {
            return Some(match prev {
                Some((c0, v0)) if c > c0 => v0 + (v - v0) * (level - c0) / (c - c0),
                _ => v,
            });
        }
        prev = Some((c, v));
    }
    None
}

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let ExperimentKind::Memorization { lrs, batch_sizes, .. } = &results.config.experiment else { unreachable!("dispatched on kind") };
    let conf = results.config.analysis.confidence;
    let one_ratio = distinct_ratios(lrs, batch_sizes, &results.config.analysis) < 2;
    // Both generalisation claims read the clean validation accuracy along the curve; without one they refuse.
    let gen = Generalisation::of(results);
    let mut table = "| random labels | μ | η/B tercile | final accuracy on random labels | best validation accuracy | final validation accuracy | diverged |\n|---|---|---|---|---|---|---|\n".to_string();
    for ((p_bits, mu_bits), models) in group_by(results.models(), |m| (m.tag.random_label_fraction.to_bits(), m.tag.momentum.to_bits())) {
        let (p, mu) = (f64::from_bits(p_bits), f32::from_bits(mu_bits));
        let ok: Vec<&ModelResult> = models.iter().copied().filter(|m| m.ok()).collect();
        let x: Vec<f64> = ok.iter().map(|m| m.tag.ratio()).collect();
        let corrupted: Vec<f64> = ok.iter().map(|m| m.last.corrupted_accuracy.unwrap_or(f64::NAN)).collect();
        let best: Vec<f64> = ok.iter().map(|m| best_validation(m)).collect();
        let what = format!("{:.0} % random labels, μ = {mu}", 100.0 * p);
        r.claims.push(spearman_claim(&format!("Higher η/B memorises the random labels less ({what})."), "η/B", "final accuracy on the random labels", &x, &corrupted, false, conf));
        r.claims.push(gen.guard(spearman_claim(&format!("Higher η/B generalises better on clean data ({what})."), "η/B", "best validation accuracy during training", &x, &best, true, conf)));
        // The paper's figure compares runs at equal memorisation, which removes the training-length confound of a
        // fixed-epoch budget: the validation accuracy when each run first fits `level` of the random labels.
        let mut reached: Vec<f64> = ok.iter().map(|m| m.curve.iter().filter_map(|p| p.corrupted_accuracy).fold(0.0, f64::max)).collect();
        reached.sort_by(f64::total_cmp);
        let level = stats::median(&reached).min(0.5);
        let pairs: Vec<(f64, f64)> = ok.iter().filter_map(|m| Some((m.tag.ratio(), validation_at_memorisation(m, level)?))).collect();
        let (xr, vr): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let mut c = spearman_claim(
            &format!("At equal memorisation (when a run first fits {:.0} % of the random labels), higher η/B has the better clean validation accuracy ({what}).", 100.0 * level),
            "η/B",
            "validation accuracy at that point (runs that never reach it are left out)",
            &xr,
            &vr,
            true,
            conf,
        );
        c.value = format!("{}; {} of {} runs reach the level", c.value, xr.len(), ok.len());
        r.claims.push(gen.guard(c));
        let mut sorted = x.clone();
        sorted.sort_by(f64::total_cmp);
        let cut = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
        let (c1, c2) = (cut(1.0 / 3.0), cut(2.0 / 3.0));
        let tercile = |m: &ModelResult| if m.tag.ratio() <= c1 { 0 } else if m.tag.ratio() <= c2 { 1 } else { 2 };
        let names = ["low η/B", "middle η/B", "high η/B"];
        let mut series = Vec::new();
        for (t, tercile_name) in names.iter().enumerate() {
            let ms: Vec<&ModelResult> = ok.iter().copied().filter(|m| tercile(m) == t).collect();
            let all_t = models.iter().filter(|m| tercile(m) == t).count();
            let len = ms.iter().map(|m| m.curve.len()).min().unwrap_or(0);
            let points: Vec<(f64, f64)> = (0..len)
                .map(|i| {
                    let c: Vec<f64> = ms.iter().filter_map(|m| m.curve[i].corrupted_accuracy).collect();
                    let v: Vec<f64> = ms.iter().filter_map(|m| m.curve[i].validation_accuracy).collect();
                    (stats::mean(&c), stats::mean(&v))
                })
                .collect();
            // A tercile's spread is over its models (several η/B and seeds), not over seeds of one setting.
            let ms_txt = |v: Vec<f64>| mean_sd(&v, "model");
            table += &format!(
                "| {:.0} % | {mu} | {} | {} | {} | {} | {} of {} |\n",
                100.0 * p,
                tercile_name,
                ms_txt(ms.iter().filter_map(|m| m.last.corrupted_accuracy).collect()),
                ms_txt(ms.iter().map(|m| best_validation(m)).filter(|v| v.is_finite()).collect()),
                ms_txt(ms.iter().filter_map(|m| m.last.validation_accuracy).collect()),
                all_t - ms.len(),
                all_t
            );
            series.push(Series { name: format!("{} (n = {})", tercile_name, ms.len()), points, errors: None, dashed: false });
        }
        let tag = format!("{:.0}-mu{}", 100.0 * p, mu);
        r.add_figure(
            format!("memorization-path-{tag}"),
            format!("Clean validation accuracy against accuracy on the random labels during training, mean per η/B tercile ({what}); training moves left to right as it memorises"),
            lines_svg(&format!("memorisation path ({what})"), &Axis { label: "accuracy on the random training labels".into(), log: false }, &Axis { label: "clean validation accuracy".into(), log: false }, &series, &[]),
        );
        if one_ratio {
            let why = format!("it plots against η/B, and every cell of this grid has the same η/B ({})", num(f64::from(lrs[0]) / batch_sizes[0] as f64));
            r.skip_figures(&[format!("memorization-vs-ratio-{tag}")], &why);
        } else {
            let by_b: Vec<Series> = group_by(ok.iter().copied(), |m| m.tag.batch_size)
                .into_iter()
                .map(|(b, ms)| Series { name: format!("B = {b}"), points: ms.iter().map(|m| (m.tag.ratio(), m.last.corrupted_accuracy.unwrap_or(f64::NAN))).collect(), errors: None, dashed: false })
                .collect();
            r.add_figure(
                format!("memorization-vs-ratio-{tag}"),
                format!("Final accuracy on the random labels against η/B ({what})"),
                scatter_svg(&format!("memorised share vs η/B ({what})"), &Axis { label: "η/B".into(), log: true }, &Axis { label: "final accuracy on random labels".into(), log: false }, &by_b, &[]),
            );
        }
    }
    r.tables.push(table);
    r.caveats.push("With a fixed number of epochs, small-B runs take many more steps than large-B ones, so the final accuracy on the random labels mostly measures training length; the equal-memorisation claim compares runs at the same point of fitting instead, as the paper's figure does (its resolution is that of `analysis.evaluations`).".into());
    r.caveats.push("Memorisation depends strongly on the number of epochs: with too few, no run fits the random labels and the first claim cannot show; with very many, every run does.".into());
    Ok(())
}
