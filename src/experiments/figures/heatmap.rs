//! η × B heatmaps ([`heatmap_svg`]): evenly spaced cells coloured by the style's colour map (viridis), a
//! colour bar, each cell's value printed on small grids, non-finite cells grey and crossed out, and white
//! reference lines (iso-ratio lines) mapped onto the grid by `heatmap_grid`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::heatmap_grid::{heatmap_ref_runs, CellAxis};
use super::{compact, count, padded, plot_err, with_note, Axis, RefKind, RefLine};
use crate::analysis::figure_style::style;
use crate::error::{LabError, Result};

/// Size of a heatmap figure in pixels.
const HEATMAP_SIZE: (u32, u32) = (760, 560);
/// A heatmap prints each cell's value when it has at most this many cells.
const MAX_PRINTED_CELLS: usize = 100;
/// At most this many tick labels per heatmap axis (every k-th value is labelled beyond that).
const MAX_HEATMAP_TICKS: usize = 12;

/// Heatmap of `values` over a grid: `ys.len()` rows (the first at the bottom) × `xs.len()` columns,
/// `values` row-major (`values[j·xs.len() + i]` belongs to `ys[j]`, `xs[i]`). Cells are evenly spaced and
/// labelled with the grid values; colours follow viridis over the finite values' range, with a colour bar
/// labelled `value_label`. Non-finite cells are light grey with a cross and counted in a note under the
/// title; each cell's value is printed when there are at most 100 cells.
///
/// `refs` are drawn as labelled white lines over the cells: [`RefKind::Proportional`] is `y = slope·x`
/// (with rows η and columns B, the iso-ratio line η/B = slope), mapped onto the grid by interpolating
/// between cell centres — log-linearly on an axis with [`Axis::log`] (the only thing `log` changes here).
/// Such lines need at least 2 strictly monotone values (positive on a log axis) on the axes they use.
///
/// Errors: no xs or no ys, `values.len() != xs.len()·ys.len()` (the message names both), a non-finite
/// reference value, or a reference line the grid cannot place.
#[allow(clippy::too_many_arguments)]
pub fn heatmap_svg(title: &str, x: &Axis, xs: &[f64], y: &Axis, ys: &[f64], values: &[f64], value_label: &str, refs: &[RefLine]) -> Result<String> {
    let (nx, ny) = (xs.len(), ys.len());
    if nx == 0 || ny == 0 {
        return Err(LabError::config(
            if nx == 0 { "figure.xs" } else { "figure.ys" },
            format!("a heatmap needs at least 1 column and 1 row, got {nx} xs and {ny} ys"),
        ));
    }
    if values.len() != nx * ny {
        return Err(LabError::config("figure.values", format!("{} values for a grid of {ny} ys × {nx} xs, which needs {}", values.len(), nx * ny)));
    }
    for (k, r) in refs.iter().enumerate() {
        let (RefKind::Horizontal(v) | RefKind::Vertical(v) | RefKind::Proportional(v)) = r.kind;
        if !v.is_finite() {
            return Err(LabError::config(format!("figure.refs[{k}]"), format!("reference line `{}` has the non-finite value {v}", r.label)));
        }
    }
    let ref_runs = refs.iter().enumerate().map(|(k, r)| heatmap_ref_runs(r, k, xs, x, ys, y)).collect::<Result<Vec<_>>>()?;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let missing = values.len() - finite.len();
    let (zmin, zmax) = match (finite.iter().copied().reduce(f64::min), finite.iter().copied().reduce(f64::max)) {
        (Some(lo), Some(hi)) if hi > lo => (lo, hi),
        (Some(v), _) => padded(v, v, false),
        _ => (0.0, 1.0),
    };
    let t = |v: f64| (v - zmin) / (zmax - zmin);
    let st = style();
    let note = match missing {
        0 => None,
        m if m == values.len() => Some("every cell diverged or is non-finite (grey, crossed out)".to_string()),
        m => Some(format!("{} diverged or non-finite (grey, crossed out)", count(m, "cell"))),
    };
    let key_points = |n: usize| (0..n).step_by(n.div_ceil(MAX_HEATMAP_TICKS)).map(|i| i as f64 + 0.5).collect::<Vec<f64>>();
    let tick = |vals: &[f64], v: f64| {
        let i = (v - 0.5).round();
        if i >= 0.0 && (i as usize) < vals.len() && (v - 0.5 - i).abs() < 1e-6 {
            compact(vals[i as usize])
        } else {
            String::new()
        }
    };
    let (x_fmt, y_fmt) = (|v: &f64| tick(xs, *v), |v: &f64| tick(ys, *v));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, HEATMAP_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let area = root.titled(title, st.font(st.font.title)).map_err(plot_err)?;
        let area = with_note(area, note.as_deref())?;
        let (main, bar) = area.split_horizontally(HEATMAP_SIZE.0 - 120);
        let (w, h) = (nx as f64, ny as f64);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(CellAxis { n: w, ticks: key_points(nx) }, CellAxis { n: h, ticks: key_points(ny) })
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x.label.as_str())
            .y_desc(y.label.as_str())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .axis_desc_style(st.font(st.font.axis))
            .label_style(st.font(st.font.tick))
            .draw()
            .map_err(plot_err)?;
        let cells = || (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j, values[j * nx + i])));
        chart
            .draw_series(cells().map(|(i, j, v)| {
                let colour = if v.is_finite() { st.colour_map(t(v)) } else { st.missing.0 };
                Rectangle::new([(i as f64, j as f64), (i as f64 + 1.0, j as f64 + 1.0)], colour.filled())
            }))
            .map_err(plot_err)?;
        for (i, j, _) in cells().filter(|c| !c.2.is_finite()) {
            let (grey, thin) = (st.reference.0, st.stroke.thin);
            let (a, b) = ((i as f64 + 0.2, j as f64 + 0.2), (i as f64 + 0.8, j as f64 + 0.8));
            let cross = [PathElement::new(vec![a, b], grey.stroke_width(thin)), PathElement::new(vec![(a.0, b.1), (b.0, a.1)], grey.stroke_width(thin))];
            chart.draw_series(cross).map_err(plot_err)?;
        }
        if nx * ny <= MAX_PRINTED_CELLS {
            let font = st.font(st.font.value).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(cells().filter(|c| c.2.is_finite()).map(|(i, j, v)| {
                    let ink = if t(v) > 0.6 { &BLACK } else { &WHITE };
                    Text::new(compact(v), (i as f64 + 0.5, j as f64 + 0.5), font.color(ink))
                }))
                .map_err(plot_err)?;
        }
        let label_font = st.font(st.font.label).into_font().color(&BLACK);
        for (r, runs) in refs.iter().zip(&ref_runs) {
            for run in runs {
                chart.draw_series(LineSeries::new(run.iter().copied(), BLACK.mix(0.55).stroke_width(2 * st.stroke.line))).map_err(plot_err)?;
                chart.draw_series(LineSeries::new(run.iter().copied(), WHITE.stroke_width(st.stroke.line))).map_err(plot_err)?;
            }
            // the label sits inside the grid, below and left of the line's last (rightmost) point
            let Some(&end) = runs.iter().flatten().max_by(|a, b| a.0.total_cmp(&b.0)) else { continue };
            let width = 7 * r.label.chars().count() as i32;
            let label = EmptyElement::at(end)
                + Rectangle::new([(-width - 8, 4), (-4, 20)], WHITE.mix(0.8).filled())
                + Text::new(r.label.clone(), (-6, 5), label_font.pos(Pos::new(HPos::Right, VPos::Top)));
            chart.draw_series(std::iter::once(label)).map_err(plot_err)?;
        }
        // colour bar, drawn as thick horizontal strokes so that the only rectangles are the cells
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(12)
            .margin_bottom(56)
            .margin_right(24)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..1.0, zmin..zmax)
            .map_err(plot_err)?;
        let zspan = zmax - zmin;
        let z_fmt = |v: &f64| compact(if v.abs() < 1e-9 * zspan { 0.0 } else { *v });
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(value_label)
            .y_labels(8)
            .axis_desc_style(st.font(st.font.axis))
            .y_label_style(st.font(st.font.tick))
            .y_label_formatter(&z_fmt)
            .draw()
            .map_err(plot_err)?;
        if !finite.is_empty() {
            let steps = 64;
            let stroke = cb.plotting_area().dim_in_pixel().1.div_ceil(steps) + 1;
            cb.draw_series((0..steps).map(|k| {
                let f = (k as f64 + 0.5) / steps as f64;
                let z = zmin + zspan * f;
                PathElement::new(vec![(0.0, z), (1.0, z)], st.colour_map(f).stroke_width(stroke))
            }))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}
