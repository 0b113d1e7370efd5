//! SVG figures of landscapes, natively (the CLI) and in wasm (the page's free play): `plotters`' SVG backend
//! writes `<text>` elements, so no font files are needed. A line plot of loss and accuracy against α, and a
//! heatmap of the loss with contour lines and an optional trajectory, which also reports the pixel box of its
//! plot area so that a page can map the pointer to plane coordinates without guessing. Colours, fonts and
//! stroke widths are those of every figure ([`super::figure_style`]).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::{self as pb, BackendColor, BackendCoord, DrawingErrorKind};

use super::figure_style;
use super::landscape::Landscape;
use crate::error::{LabError, Result};

/// Title sizes of the landscape figures: larger (line plot) and smaller (heatmap) than the style's
/// `font.title`, kept so that the figures' layout, and the heatmap's [`PlotBox`] that the page maps the
/// pointer with, stay what they were when the style was unified.
const LINE_TITLE_SIZE: u32 = 20;
/// See [`LINE_TITLE_SIZE`].
const HEATMAP_TITLE_SIZE: u32 = 16;

fn plot_err<E: std::fmt::Display>(e: E) -> LabError {
    LabError::Io(format!("drawing the figure failed: {e}"))
}

/// Loss (left) and accuracy (right) against α for every data set of a 1-D landscape.
/// `marks` are vertical reference lines with labels (e.g. `(0, "θ₁")`, `(1, "θ₂")`).
pub fn line_svg(l: &Landscape, title: &str, marks: &[(f64, &str)]) -> Result<String> {
    if l.betas.is_some() || l.alphas.len() < 2 {
        return Err(LabError::Backend("a line plot needs a 1-D landscape of at least 2 points".into()));
    }
    let st = figure_style::style();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, st.font(LINE_TITLE_SIZE)).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(480);
        let (a0, a1) = (l.alphas[0], *l.alphas.last().expect("2 points"));
        let finite = |v: &f64| v.is_finite();
        let lmin = l.sets.iter().flat_map(|s| s.loss.iter()).copied().filter(finite).fold(f64::INFINITY, f64::min);
        let lmax = l.sets.iter().flat_map(|s| s.loss.iter()).copied().filter(finite).fold(f64::NEG_INFINITY, f64::max);
        let (lmin, lmax) = if lmin.is_finite() && lmax > lmin { (0f64.max(lmin - 0.05 * (lmax - lmin)), lmax + 0.05 * (lmax - lmin)) } else { (0.0, 1.0) };
        let mut loss = ChartBuilder::on(&left).margin(12).x_label_area_size(40).y_label_area_size(60).build_cartesian_2d(a0..a1, lmin..lmax).map_err(plot_err)?;
        loss.configure_mesh().x_desc("α").y_desc("loss (cross-entropy)").light_line_style(WHITE.mix(0.0)).draw().map_err(plot_err)?;
        let mut acc = ChartBuilder::on(&right).margin(12).x_label_area_size(40).y_label_area_size(60).build_cartesian_2d(a0..a1, 0.0..1.0).map_err(plot_err)?;
        acc.configure_mesh().x_desc("α").y_desc("accuracy").light_line_style(WHITE.mix(0.0)).draw().map_err(plot_err)?;
        for &(x, label) in marks {
            let (grey, thin) = (st.reference.0, st.stroke.thin);
            loss.draw_series(LineSeries::new([(x, lmin), (x, lmax)], grey.stroke_width(thin))).map_err(plot_err)?;
            loss.draw_series([Text::new(label.to_string(), (x + 0.01 * (a1 - a0), lmin + 0.03 * (lmax - lmin)), st.font(st.font.label).into_font().color(&grey))]).map_err(plot_err)?;
            acc.draw_series(LineSeries::new([(x, 0.0), (x, 1.0)], grey.stroke_width(thin))).map_err(plot_err)?;
        }
        let line = st.stroke.line;
        for (k, s) in l.sets.iter().enumerate() {
            let c = st.series_colour(k);
            let pts = l.alphas.iter().zip(&s.loss).filter(|(_, v)| finite(v)).map(|(&a, &v)| (a, v));
            loss.draw_series(LineSeries::new(pts, c.stroke_width(line)))
                .map_err(plot_err)?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(line)));
            let pts = l.alphas.iter().zip(&s.accuracy).map(|(&a, &v)| (a, v));
            acc.draw_series(LineSeries::new(pts, c.stroke_width(line)))
                .map_err(plot_err)?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(line)));
        }
        loss.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::UpperMiddle).draw().map_err(plot_err)?;
        acc.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::LowerMiddle).draw().map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// plotters' SVG backend with the text measure of plotters' native build (its "naive" font: 0.7 em per
/// character), on every target. In wasm, plotters measures text by adding a `<span style=…>` to the page's
/// `document`, which the page's strict CSP (`style-src 'self'`) blocks and reports, and which a worker does
/// not have; this measure needs neither, and the SVG is byte for byte the same in the CLI and in the page.
struct SvgText<'a>(SVGBackend<'a>);

impl DrawingBackend for SvgText<'_> {
    type ErrorType = std::io::Error;
    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: pb::BackendStyle>(&mut self, a: BackendCoord, b: BackendCoord, s: &S) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(a, b, s)
    }
    fn draw_rect<S: pb::BackendStyle>(&mut self, a: BackendCoord, b: BackendCoord, s: &S, fill: bool) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(a, b, s, fill)
    }
    fn draw_path<S: pb::BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, path: I, s: &S) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, s)
    }
    fn draw_circle<S: pb::BackendStyle>(&mut self, c: BackendCoord, r: u32, s: &S, fill: bool) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(c, r, s, fill)
    }
    fn fill_polygon<S: pb::BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, vert: I, s: &S) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, s)
    }
    fn draw_text<S: pb::BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_text(text, s, pos)
    }
    fn estimate_text_size<S: pb::BackendTextStyle>(&self, text: &str, s: &S) -> std::result::Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        // plotters' naive font (plotters 0.3.7, style/font/naive.rs), which the native build uses
        let em = s.size() / 1.24 / 1.24;
        Ok(((em * 0.7 * text.len() as f64).round() as u32, (em * 0.24).round() as u32 + em.round() as u32))
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }
}

/// Line segments of the level set `z = level` of a grid `z[j·nx + i]` at `(xs[i], ys[j])` (marching squares;
/// a saddle cell is resolved by its centre value).
pub fn contour_segments(xs: &[f64], ys: &[f64], z: &[f64], level: f64) -> Vec<((f64, f64), (f64, f64))> {
    let nx = xs.len();
    let mut out = Vec::new();
    for j in 0..ys.len().saturating_sub(1) {
        for i in 0..nx.saturating_sub(1) {
            // corners counter-clockwise from (i, j)
            let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let v: Vec<f64> = c.iter().map(|&(a, b)| z[b * nx + a]).collect();
            if v.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let mut pts = Vec::with_capacity(4);
            for e in 0..4 {
                let (p, q) = (e, (e + 1) % 4);
                if (v[p] < level) != (v[q] < level) {
                    let t = (level - v[p]) / (v[q] - v[p]);
                    let (xp, yp) = (xs[c[p].0], ys[c[p].1]);
                    let (xq, yq) = (xs[c[q].0], ys[c[q].1]);
                    pts.push((xp + t * (xq - xp), yp + t * (yq - yp)));
                }
            }
            match pts.len() {
                2 => out.push((pts[0], pts[1])),
                4 => {
                    let centre = v.iter().sum::<f64>() / 4.0;
                    if (centre < level) == (v[0] < level) {
                        out.push((pts[0], pts[3]));
                        out.push((pts[1], pts[2]));
                    } else {
                        out.push((pts[0], pts[1]));
                        out.push((pts[2], pts[3]));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Axis labels and an optional path drawn over a heatmap.
#[derive(Clone, Debug)]
pub struct HeatmapStyle {
    /// x-axis label.
    pub x_desc: String,
    /// y-axis label.
    pub y_desc: String,
    /// A path (e.g. a training trajectory projected onto the plane), drawn as a line with dots; its first
    /// point is marked with a circle.
    pub path: Option<Vec<(f64, f64)>>,
}

impl Default for HeatmapStyle {
    fn default() -> Self {
        HeatmapStyle { x_desc: "α (direction δ)".into(), y_desc: "β (direction η)".into(), path: None }
    }
}

/// Where the heatmap's plot area lies in the SVG, in SVG pixels, and the plane coordinates at its edges:
/// pixel `(px, py)` inside the box is `α = x_range[0] + (px − left)/width·(x_range[1] − x_range[0])`,
/// `β = y_range[1] − (py − top)/height·(y_range[1] − y_range[0])` (β grows upwards).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PlotBox {
    /// Width of the whole SVG.
    pub svg_width: u32,
    /// Height of the whole SVG.
    pub svg_height: u32,
    /// Left edge of the plot area.
    pub left: i32,
    /// Top edge of the plot area.
    pub top: i32,
    /// Width of the plot area.
    pub width: i32,
    /// Height of the plot area.
    pub height: i32,
    /// α at the left and right edges.
    pub x_range: [f64; 2],
    /// β at the bottom and top edges.
    pub y_range: [f64; 2],
}

/// A heatmap and where its plot area lies ([`PlotBox`]).
#[derive(Clone, Debug)]
pub struct HeatmapFigure {
    /// The SVG document.
    pub svg: String,
    /// The plot area's pixel box and the plane coordinates at its edges.
    pub plot_box: PlotBox,
}

/// Heatmap of set `set`'s loss over a 2-D slice, coloured by log₁₀ loss, with `levels` contour lines
/// evenly spaced in log loss, a colour bar, and the centre θ* marked.
pub fn heatmap_svg(l: &Landscape, set: usize, title: &str, levels: usize) -> Result<String> {
    heatmap_svg_with(l, set, title, levels, &HeatmapStyle::default())
}

/// [`heatmap_svg`] with the axis labels and overlaid path of `style`.
pub fn heatmap_svg_with(l: &Landscape, set: usize, title: &str, levels: usize, style: &HeatmapStyle) -> Result<String> {
    heatmap_figure(l, set, title, levels, style).map(|f| f.svg)
}

/// [`heatmap_svg_with`], with the pixel box of the plot area ([`PlotBox`]).
pub fn heatmap_figure(l: &Landscape, set: usize, title: &str, levels: usize, style: &HeatmapStyle) -> Result<HeatmapFigure> {
    let betas = l.betas.as_ref().ok_or_else(|| LabError::Backend("a heatmap needs a 2-D landscape".into()))?;
    let s = l.sets.get(set).ok_or_else(|| LabError::Backend(format!("no data set {set} in the landscape")))?;
    let (xs, ys) = (&l.alphas, betas);
    if xs.len() < 2 || ys.len() < 2 {
        return Err(LabError::Backend("a heatmap needs at least 2 × 2 points".into()));
    }
    let z: Vec<f64> = s.loss.iter().map(|&v| if v > 0.0 && v.is_finite() { v.log10() } else { f64::NAN }).collect();
    let zmin = z.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let zmax = z.iter().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    let (zmin, zmax) = if zmin.is_finite() && zmax > zmin { (zmin, zmax) } else { (zmin.min(0.0), zmin.max(0.0) + 1.0) };
    let t = |v: f64| (v - zmin) / (zmax - zmin);
    let half = |v: &[f64], i: usize| {
        let lo = if i == 0 { v[0] - (v[1] - v[0]) / 2.0 } else { (v[i - 1] + v[i]) / 2.0 };
        let hi = if i + 1 == v.len() { v[i] + (v[i] - v[i - 1]) / 2.0 } else { (v[i] + v[i + 1]) / 2.0 };
        (lo, hi)
    };
    let (x0, x1) = (half(xs, 0).0, half(xs, xs.len() - 1).1);
    let (y0, y1) = (half(ys, 0).0, half(ys, ys.len() - 1).1);
    const SIZE: (u32, u32) = (720, 600);
    let st = figure_style::style();
    let mut svg = String::new();
    let plot_box;
    {
        let root = SvgText(SVGBackend::with_string(&mut svg, SIZE)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, st.font(HEATMAP_TITLE_SIZE)).map_err(plot_err)?;
        let (main, bar): (DrawingArea<_, Shift>, _) = root.split_horizontally(600);
        let mut chart = ChartBuilder::on(&main).margin(12).x_label_area_size(40).y_label_area_size(50).build_cartesian_2d(x0..x1, y0..y1).map_err(plot_err)?;
        // a tick a rounding error below zero would print as -0.0
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(style.x_desc.as_str())
            .y_desc(style.y_desc.as_str())
            .x_label_formatter(&|v| format!("{:.1}", if v.abs() < 1e-9 { 0.0 } else { *v }))
            .y_label_formatter(&|v| format!("{:.1}", if v.abs() < 1e-9 { 0.0 } else { *v }))
            .draw()
            .map_err(plot_err)?;
        let (px, py) = chart.plotting_area().get_pixel_range();
        plot_box = PlotBox {
            svg_width: SIZE.0,
            svg_height: SIZE.1,
            left: px.start,
            top: py.start,
            width: px.end - px.start,
            height: py.end - py.start,
            x_range: [x0, x1],
            y_range: [y0, y1],
        };
        let cells = (0..ys.len()).flat_map(|j| (0..xs.len()).map(move |i| (i, j)));
        chart
            .draw_series(cells.map(|(i, j)| {
                let v = z[j * xs.len() + i];
                let colour = if v.is_finite() { st.colour_map(t(v)) } else { st.missing.0 };
                let ((a, b), (c, d)) = (half(xs, i), half(ys, j));
                Rectangle::new([(a, c), (b, d)], colour.filled())
            }))
            .map_err(plot_err)?;
        for n in 1..=levels {
            let level = zmin + (zmax - zmin) * n as f64 / (levels + 1) as f64;
            let segs = contour_segments(xs, ys, &z, level);
            chart.draw_series(segs.into_iter().map(|(p, q)| PathElement::new(vec![p, q], WHITE.mix(0.8).stroke_width(st.stroke.thin)))).map_err(plot_err)?;
        }
        if let Some(path) = &style.path {
            let (ink, line) = (st.trajectory.0, st.stroke.line);
            chart.draw_series(LineSeries::new(path.iter().copied(), ink.stroke_width(line))).map_err(plot_err)?;
            chart.draw_series(path.iter().map(|&p| Circle::new(p, 3, ink.filled()))).map_err(plot_err)?;
            if let Some(&first) = path.first() {
                chart.draw_series([Circle::new(first, 7, ink.stroke_width(line))]).map_err(plot_err)?;
            }
        }
        chart.draw_series([Cross::new((0.0, 0.0), 6, st.centre.0.stroke_width(st.stroke.line))]).map_err(plot_err)?;
        // colour bar in log10 loss, labelled with the loss itself
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(12)
            .margin_bottom(52)
            .margin_right(8)
            .y_label_area_size(50)
            .caption(format!("{} loss", s.name), st.font(st.font.note))
            .build_cartesian_2d(0.0..1.0, zmin..zmax)
            .map_err(plot_err)?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(8)
            .y_label_style(st.font(st.font.tick))
            .y_label_formatter(&|v| format!("{:.3}", 10f64.powf(*v)))
            .draw()
            .map_err(plot_err)?;
        let steps = 100;
        cb.draw_series((0..steps).map(|k| {
            let (lo, hi) = (zmin + (zmax - zmin) * k as f64 / steps as f64, zmin + (zmax - zmin) * (k + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, lo), (1.0, hi)], st.colour_map((k as f64 + 0.5) / steps as f64).filled())
        }))
        .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(HeatmapFigure { svg, plot_box })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contours_of_a_cone_lie_on_the_circle() {
        let xs: Vec<f64> = (0..21).map(|i| -1.0 + i as f64 * 0.1).collect();
        let z: Vec<f64> = xs.iter().flat_map(|&y| xs.iter().map(move |&x| (x * x + y * y).sqrt())).collect();
        let segs = contour_segments(&xs, &xs, &z, 0.5);
        assert!(segs.len() > 10);
        for (p, q) in segs {
            for (x, y) in [p, q] {
                assert!(((x * x + y * y).sqrt() - 0.5).abs() < 0.02, "({x}, {y}) is off the circle");
            }
        }
    }

    /// `(x, y, width, height)` of every `<rect>` whose fill is `colour` (`#rrggbb`, any case).
    fn rects_filled(svg: &str, colour: &str) -> Vec<(f64, f64, f64, f64)> {
        let attr = |tag: &str, name: &str| -> f64 {
            let k = tag.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
            tag[k..k + tag[k..].find('"').unwrap()].parse().unwrap()
        };
        svg.split("<rect").skip(1).map(|t| &t[..t.find('>').unwrap()]).filter(|t| t.to_lowercase().contains(&format!("fill=\"{}\"", colour.to_lowercase()))).map(|t| (attr(t, "x"), attr(t, "y"), attr(t, "width"), attr(t, "height"))).collect()
    }

    #[test]
    fn the_plot_box_maps_the_lowest_cell_to_the_bottom_left_and_the_highest_to_the_top_right() {
        use super::super::landscape::{LandscapeKind, SetValues};
        let loss: Vec<f64> = (0..3).flat_map(|j| (0..3).map(move |i| 10f64.powi(i + 3 * j))).collect();
        let l = Landscape {
            kind: LandscapeKind::Slice2d,
            alphas: vec![-1.0, 0.0, 1.0],
            betas: Some(vec![-2.0, 0.0, 2.0]),
            sets: vec![SetValues { name: "train".into(), examples: 1, loss, accuracy: vec![0.5; 9] }],
        };
        let style = HeatmapStyle { path: Some(vec![(-1.0, -2.0), (0.0, 0.0)]), ..HeatmapStyle::default() };
        let f = heatmap_figure(&l, 0, "t", 3, &style).unwrap();
        let b = f.plot_box;
        assert_eq!((b.x_range, b.y_range), ([-1.5, 1.5], [-3.0, 3.0]), "the box's edges are the outer cell edges");
        assert!(b.left > 0 && b.top > 0 && b.left + b.width < b.svg_width as i32 && b.top + b.height < b.svg_height as i32, "{b:?}");
        // the lowest loss (α = −1, β = −2) is the darkest viridis colour, the highest (α = 1, β = 2) the lightest
        let (lo, hi) = (rects_filled(&f.svg, "#440154"), rects_filled(&f.svg, "#FDE725"));
        let (lo, hi) = (lo.first().expect("the lowest cell is drawn"), hi.first().expect("the highest cell is drawn"));
        let (cell_w, cell_h) = (b.width as f64 / 3.0, b.height as f64 / 3.0);
        assert!((lo.0 - b.left as f64).abs() <= 1.0 && (lo.1 + lo.3 - (b.top + b.height) as f64).abs() <= 1.5, "lowest cell {lo:?} in {b:?}");
        assert!((hi.0 + hi.2 - (b.left + b.width) as f64).abs() <= 1.5 && (hi.1 - b.top as f64).abs() <= 1.0, "highest cell {hi:?} in {b:?}");
        assert!((lo.2 - cell_w).abs() <= 1.5 && (lo.3 - cell_h).abs() <= 1.5, "a cell is a third of the box: {lo:?}");
        // the trajectory is drawn: a polyline of the path's colour
        assert!(f.svg.contains("<polyline") && f.svg.to_lowercase().contains("#ff7800"), "the path is overlaid");
    }
}
