//! Scatter and line plots ([`scatter_svg`], [`lines_svg`]): one colour per series, error bars, a legend in
//! the corner that hides the fewest points, grey labelled reference lines, on linear or logarithmic axes. The
//! two kinds share everything but their marks (filled circles; a polyline through small dots).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::log_axis::LogAxis;
use super::xy_plan::{plan, XyPlan};
use super::{compact, plot_err, with_note, Area, Axis, RefKind, RefLine, Series};
use crate::analysis::figure_style::style;
use crate::error::Result;

/// Size of a scatter or line figure in pixels.
const XY_SIZE: (u32, u32) = (720, 480);

/// The marks of a figure of points.
#[derive(Clone, Copy, PartialEq)]
enum Marks {
    Scatter,
    Lines,
}

/// Scatter plot: one colour of filled circles per series, error bars where given, a legend of series names,
/// and grey labelled reference lines. See the [module docs](super) for how non-finite points are handled.
///
/// Errors: no series, error bars of the wrong length, a non-finite reference value, or no drawable point.
pub fn scatter_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine]) -> Result<String> {
    xy_svg(title, x, y, series, refs, Marks::Scatter)
}

/// Line plot: one colour per series, a polyline (dashed when [`Series::dashed`]) through small markers,
/// broken where a point is not drawn; error bars, legend and reference lines as in [`scatter_svg`].
///
/// Errors: as [`scatter_svg`].
pub fn lines_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine]) -> Result<String> {
    xy_svg(title, x, y, series, refs, Marks::Lines)
}

fn xy_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine], marks: Marks) -> Result<String> {
    let (plan, note) = plan(x, y, series, refs)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, XY_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let area = root.titled(title, style().font(style().font.title)).map_err(plot_err)?;
        let area = with_note(area, note.as_deref())?;
        let ((x0, x1), (y0, y1)) = (plan.x, plan.y);
        match (x.log, y.log) {
            (false, false) => draw_xy(&area, x0..x1, y0..y1, &plan, x, y, refs, marks)?,
            (true, false) => draw_xy(&area, LogAxis { lo: x0, hi: x1 }, y0..y1, &plan, x, y, refs, marks)?,
            (false, true) => draw_xy(&area, x0..x1, LogAxis { lo: y0, hi: y1 }, &plan, x, y, refs, marks)?,
            (true, true) => draw_xy(&area, LogAxis { lo: x0, hi: x1 }, LogAxis { lo: y0, hi: y1 }, &plan, x, y, refs, marks)?,
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Draws an x-y figure on `area` with the coordinate specs `xr`, `yr` (linear or log ranges).
#[allow(clippy::too_many_arguments)]
fn draw_xy<X, Y>(area: &Area<'_>, xr: X, yr: Y, plan: &XyPlan<'_>, x: &Axis, y: &Axis, refs: &[RefLine], marks: Marks) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let st = style();
    let mut chart =
        ChartBuilder::on(area).margin(12).margin_right(28).x_label_area_size(40).y_label_area_size(64).build_cartesian_2d(xr, yr).map_err(plot_err)?;
    // a tick a rounding error away from zero would print as 1e-17
    let snap = |v: f64, (lo, hi): (f64, f64), log: bool| if !log && v.abs() < 1e-9 * (hi - lo) { 0.0 } else { v };
    let x_fmt = |v: &f64| compact(snap(*v, plan.x, x.log));
    let y_fmt = |v: &f64| compact(snap(*v, plan.y, y.log));
    chart
        .configure_mesh()
        .x_desc(x.label.as_str())
        .y_desc(y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_labels(8)
        .y_labels(8)
        .axis_desc_style(st.font(st.font.axis))
        .label_style(st.font(st.font.tick))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(plot_err)?;
    let label_style = st.font(st.font.label).into_font().color(&st.reference.0);
    for r in refs {
        let Some(path) = plan.ref_path(&r.kind) else { continue };
        let (&first, &last) = (path.first().expect("≥ 2 points"), path.last().expect("≥ 2 points"));
        chart.draw_series(LineSeries::new(path, st.reference.0.stroke_width(st.stroke.thin))).map_err(plot_err)?;
        let text = |at, offset, pos| EmptyElement::at(at) + Text::new(r.label.clone(), offset, label_style.pos(pos));
        let label = match r.kind {
            RefKind::Horizontal(_) => text(first, (4, -3), Pos::new(HPos::Left, VPos::Bottom)),
            RefKind::Vertical(_) => text(last, (4, 4), Pos::new(HPos::Left, VPos::Top)),
            RefKind::Proportional(_) => text(last, (-4, 4), Pos::new(HPos::Right, VPos::Top)),
        };
        chart.draw_series(std::iter::once(label)).map_err(plot_err)?;
    }
    for (k, s) in plan.series.iter().enumerate() {
        let c = st.series_colour(k);
        for (bx, lo, hi) in plan.bars(k) {
            let cap = |at| EmptyElement::at(at) + PathElement::new(vec![(-3, 0), (3, 0)], c.stroke_width(st.stroke.thin));
            chart.draw_series([PathElement::new(vec![(bx, lo), (bx, hi)], c.stroke_width(st.stroke.thin))]).map_err(plot_err)?;
            chart.draw_series([cap((bx, lo)), cap((bx, hi))]).map_err(plot_err)?;
        }
        let markers = match marks {
            Marks::Scatter => chart.draw_series(plan.points(k).map(|p| Circle::new(p, st.marker.scatter, c.mix(0.85).filled()))).map_err(plot_err)?,
            Marks::Lines => {
                for run in plan.runs(k).into_iter().filter(|r| r.len() >= 2) {
                    if s.dashed {
                        chart.draw_series(DashedLineSeries::new(run, 7, 5, c.stroke_width(st.stroke.line))).map_err(plot_err)?;
                    } else {
                        chart.draw_series(LineSeries::new(run, c.stroke_width(st.stroke.line))).map_err(plot_err)?;
                    }
                }
                chart.draw_series(plan.points(k).map(|p| Circle::new(p, st.marker.line, c.filled()))).map_err(plot_err)?
            }
        };
        // legend glyphs are squares or line pieces, never circles: a figure's circles are its data points
        let anno = markers.label(s.name.clone());
        match marks {
            Marks::Scatter => anno.legend(move |(lx, ly)| Rectangle::new([(lx + 6, ly - 4), (lx + 14, ly + 4)], c.filled())),
            Marks::Lines => {
                let line = st.stroke.line;
                let (a, b) = if s.dashed { ((0, 7), (12, 20)) } else { ((0, 10), (10, 20)) };
                anno.legend(move |(lx, ly)| {
                    let seg = |(u, v): (i32, i32)| PathElement::new(vec![(u, 0), (v, 0)], c.stroke_width(line));
                    EmptyElement::at((lx, ly)) + seg(a) + seg(b)
                })
            }
        };
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(st.font(st.font.legend))
        .position(plan.legend_corner())
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
