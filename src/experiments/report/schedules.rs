//! E4, schedules: a cyclic learning rate against the cyclic batch size with the same η/B at every point,
//! and constant pairs of equal η/B. The claim is an equality, tested on seed-paired differences.

use super::{mean_sd, num, one_replicate, Claim, Generalisation, Report, Verdict};
use crate::error::Result;
use crate::experiments::figures::{lines_svg, Axis, Series};
use crate::experiments::results::{CurvePoint, ExperimentResults, ModelResult};
use crate::experiments::spec::ExperimentKind;
use crate::experiments::stats;

pub(super) fn report(results: &ExperimentResults, r: &mut Report) -> Result<()> {
    let ExperimentKind::Schedules { lr, batch_size, factors, stage_epochs, constant } = &results.config.experiment else { unreachable!("dispatched on kind") };
    let analysis = &results.config.analysis;
    let conf = analysis.confidence;
    let gen = Generalisation::of(results);
    let gen_name = gen.label();
    let one_seed = results.config.seeds.len() == 1;
    let names: Vec<String> = ["cyclic learning rate".to_string(), "cyclic batch size".to_string()].into_iter().chain(constant.iter().map(|s| format!("constant {}", s.name()))).collect();
    let of = |s: usize| -> Vec<&ModelResult> { results.models().filter(|m| m.tag.setting == Some(s)).collect() };
    let mut pairs = vec![(0usize, 1usize)];
    for i in (2..names.len()).step_by(2) {
        if i + 1 < names.len() {
            let (a, b) = (&constant[i - 2], &constant[i - 1]);
            let (ra, rb) = (f64::from(a.lr) / a.batch_size as f64, f64::from(b.lr) / b.batch_size as f64);
            if analysis.same_ratio(ra, rb) {
                pairs.push((i, i + 1));
            } else {
                r.caveats.push(format!("The constant settings {} and {} do not share η/B ({} vs {}), so they are shown but not tested for equality.", a.name(), b.name(), num(ra), num(rb)));
            }
        }
    }
    for (a, b) in pairs {
        let (ma, mb) = (of(a), of(b));
        let same = format!("{} and {} (equal η/B) reach the same {}.", names[a], names[b], Generalisation::CLAIMED);
        r.claims.push(gen.guard(paired_claim(&same, Generalisation::CLAIMED, &ma, &mb, |m| gen.value(m), conf, false, one_seed)));
        r.claims.push(paired_claim(&format!("{} and {} reach minima of the same λ_max.", names[a], names[b]), "log λ_max", &ma, &mb, |m| m.lambda_max.unwrap_or(f64::NAN).ln(), conf, true, one_seed));
    }
    r.caveats.push("'Holds' for an equality means the seed-paired difference's confidence interval contains 0: no difference detected with these seeds, not proof of none.".into());
    r.caveats.push("The schedules advance stage by stage in epochs of examples seen, so at equal epochs the cyclic batch-size run has taken fewer, larger steps; the claim is about equal η/B paths per epoch.".into());
    let mut t = format!("| run | final {gen_name} (mean ± sd) | final train loss | λ_max | diverged |\n|---|---|---|---|---|\n");
    for (s, name) in names.iter().enumerate() {
        let all = of(s);
        let ok: Vec<&ModelResult> = all.iter().copied().filter(|m| m.ok()).collect();
        let ms = |v: Vec<f64>| mean_sd(&v, "seed");
        t += &format!("| {name} | {} | {} | {} | {} of {} |\n", ms(ok.iter().map(|m| gen.value(m)).collect()), ms(ok.iter().map(|m| m.last.train_loss).collect()), ms(ok.iter().filter_map(|m| m.lambda_max).collect()), all.len() - ok.len(), all.len());
    }
    r.tables.push(t);
    let epoch = Axis { label: "epoch".into(), log: false };
    let mean_curve = |s: usize, f: &dyn Fn(&CurvePoint) -> Option<f64>| -> Series {
        let ok: Vec<&ModelResult> = of(s).into_iter().filter(|m| m.ok()).collect();
        let len = ok.iter().map(|m| m.curve.len()).min().unwrap_or(0);
        let points = (0..len).map(|i| (stats::mean(&ok.iter().map(|m| m.curve[i].epoch).collect::<Vec<_>>()), stats::mean(&ok.iter().filter_map(|m| f(&m.curve[i])).collect::<Vec<_>>()))).collect();
        Series { name: names[s].clone(), points, errors: None, dashed: s % 2 == 1 }
    };
    r.add_figure(
        "accuracy-curves",
        format!("{gen_name} over training, mean over seeds (dashed: the second run of each equal-η/B pair)"),
        lines_svg(&format!("{gen_name} over training"), &epoch, &Axis { label: gen_name.clone(), log: false }, &(0..names.len()).map(|s| mean_curve(s, &|p: &CurvePoint| gen.at(p))).collect::<Vec<_>>(), &[]),
    );
    r.add_figure(
        "loss-curves",
        "Training loss over training, mean over seeds",
        lines_svg("training loss over training", &epoch, &Axis { label: "cross-entropy (log)".into(), log: true }, &(0..names.len()).map(|s| mean_curve(s, &|p: &CurvePoint| Some(p.train_loss))).collect::<Vec<_>>(), &[]),
    );
    let fmax = factors.iter().copied().fold(1.0f32, f32::max);
    let epochs = results.models().map(|m| m.epochs).fold(0.0, f64::max);
    let stages = (epochs / stage_epochs).ceil() as usize;
    let step_line = |ratio_at: &dyn Fn(f32) -> f64, name: &str, dashed: bool| {
        let mut points = Vec::new();
        for s in 0..stages {
            let f = factors[s % factors.len()];
            let y = ratio_at(f);
            points.push((s as f64 * stage_epochs, y));
            points.push(((s as f64 + 1.0) * stage_epochs, y));
        }
        Series { name: name.into(), points, errors: None, dashed }
    };
    let clr = step_line(&|f| f64::from(*lr * f) / *batch_size as f64, "cyclic learning rate: η·f / B", false);
    let cbs = step_line(&|f| f64::from(*lr * fmax) / ((*batch_size as f64 * f64::from(fmax) / f64::from(f)).round()), "cyclic batch size: η·max f / round(B·max f / f)", true);
    r.add_figure("ratio-schedules", "η/B along training for the two schedules (they should coincide)", lines_svg("η/B schedules", &epoch, &Axis { label: "η/B".into(), log: false }, &[clr, cbs], &[]));
    Ok(())
}

/// Seed-paired difference `f(b) − f(a)` with its t interval; holds if the interval contains 0.
#[allow(clippy::too_many_arguments)]
fn paired_claim(statement: &str, what: &str, a: &[&ModelResult], b: &[&ModelResult], f: impl Fn(&ModelResult) -> f64, conf: f64, log: bool, one_seed: bool) -> Claim {
    let diffs: Vec<f64> = a
        .iter()
        .filter(|m| m.ok())
        .filter_map(|ma| b.iter().find(|mb| mb.tag.seed == ma.tag.seed && mb.ok()).map(|mb| f(mb) - f(ma)))
        .filter(|d| d.is_finite())
        .collect();
    let statistic = format!("mean seed-paired difference of {what} (second − first) with its {:.0} % t interval; holds if the interval contains 0", 100.0 * conf);
    if diffs.len() < 2 {
        let value = if one_seed { format!("{}: a t interval needs at least 2 seed pairs", one_replicate("seed")) } else { format!("undefined: {} seed pairs finished", diffs.len()) };
        return Claim { statement: statement.into(), statistic, value, verdict: Verdict::Inconclusive };
    }
    let e = stats::mean_ci(&diffs, conf);
    let factor = if log { format!(" (×{} [{}, {}])", num(e.value.exp()), num(e.ci_low.exp()), num(e.ci_high.exp())) } else { String::new() };
    Claim {
        statement: statement.into(),
        statistic,
        value: format!("{} [{}, {}]{factor}, {} pairs", num(e.value), num(e.ci_low), num(e.ci_high), diffs.len()),
        verdict: if e.ci_low <= 0.0 && 0.0 <= e.ci_high { Verdict::Holds } else { Verdict::DoesNotHold },
    }
}
