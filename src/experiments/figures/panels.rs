//! Figures side by side ([`panels_svg`]): SVG documents nested in one outer `<svg>`, in a grid.

use crate::error::{LabError, Result};

/// Reads the `width` and `height` of the root `<svg …>` tag; returns them with the tag's offset.
fn svg_size(svg: &str) -> Option<(f64, f64, usize)> {
    let start = svg.find("<svg")?;
    let tag = &svg[start..start + svg[start..].find('>')?];
    let attr = |name: &str| {
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[at..at + tag[at..].find('"')?].trim_end_matches("px").parse::<f64>().ok()
    };
    Some((attr("width")?, attr("height")?, start))
}

/// Lays figures (SVG documents such as those of [`scatter_svg`](super::scatter_svg)) out in a grid of `columns` columns, left
/// to right and top to bottom, by nesting each `<svg>` in one outer `<svg>` at an x/y offset. Every grid
/// cell is as large as the largest figure.
///
/// Errors: no panels, 0 columns, or a panel without a root `<svg>` tag with numeric width and height.
pub fn panels_svg(panels: &[String], columns: usize) -> Result<String> {
    if panels.is_empty() {
        return Err(LabError::config("figure.panels", "no panels to lay out"));
    }
    if columns == 0 {
        return Err(LabError::config("figure.columns", "a grid of panels needs at least 1 column"));
    }
    let sizes = panels
        .iter()
        .enumerate()
        .map(|(k, p)| svg_size(p).ok_or_else(|| LabError::config(format!("figure.panels[{k}]"), "not an SVG document with a numeric width and height")))
        .collect::<Result<Vec<_>>>()?;
    let cw = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
    let ch = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
    let rows = panels.len().div_ceil(columns);
    let (w, h) = (cw * columns.min(panels.len()) as f64, ch * rows as f64);
    let mut out = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (k, (panel, &(_, _, at))) in panels.iter().zip(&sizes).enumerate() {
        let (x, y) = (cw * (k % columns) as f64, ch * (k / columns) as f64);
        // `<svg x=".." y=".."` followed by the rest of the panel after its own `<svg` (any prolog is dropped)
        let rest = &panel[at + "<svg".len()..];
        out.push_str(&format!("<svg x=\"{x}\" y=\"{y}\"{rest}"));
        if !rest.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("</svg>\n");
    Ok(out)
}
