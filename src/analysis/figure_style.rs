//! The one style of every figure: series palette, colour maps, greys, font sizes, stroke widths and marker
//! sizes, shared by the landscape figures ([`super::plot`]), the experiment reports' figures
//! (`experiments::figures`) and the page's live figures (www/lab/figures.js).
//!
//! Why the source is a JavaScript file: `www/lab/figure-style.js` is the single place where these values are
//! written. The page imports it as an ordinary module (no JSON module, no fetch, so it works in every browser,
//! offline through the service worker, and cross-origin in the `<sgd-lab>` element); Rust compiles the same
//! file in with `include_str!` and parses its `FIGURE_STYLE` object, which is kept strict JSON, with serde on
//! first use ([`style`]). A unit test checks that the file parses, so a malformed edit fails the tests, not a
//! figure at run time.

use std::sync::OnceLock;

use plotters::style::RGBColor;
use serde::{Deserialize, Deserializer};

/// The style file, compiled in.
const SOURCE: &str = include_str!("../../www/lab/figure-style.js");
/// The JSON object starts at the first `{` after this.
const MARKER: &str = "export const FIGURE_STYLE =";

/// A colour written `"#rrggbb"` in the style file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Colour(pub RGBColor);

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let hex = s.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let hex = hex.ok_or_else(|| serde::de::Error::custom(format!("colour {s:?} is not \"#rrggbb\"")))?;
        let byte = |k: usize| u8::from_str_radix(&hex[k..k + 2], 16).expect("checked hex digits");
        Ok(Colour(RGBColor(byte(0), byte(2), byte(4))))
    }
}

/// The font family and the size in pixels of each role of text.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fonts {
    /// Font family, e.g. `"sans-serif"` (SVG `<text>` elements name it; no font files are needed).
    pub family: String,
    /// Figure titles.
    pub title: u32,
    /// Axis descriptions.
    pub axis: u32,
    /// Legend entries.
    pub legend: u32,
    /// Notes under a title and colour-bar captions.
    pub note: u32,
    /// Tick labels.
    pub tick: u32,
    /// Labels of reference lines and marks.
    pub label: u32,
    /// Numbers printed inside heatmap cells.
    pub value: u32,
}

/// Line widths in pixels.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strokes {
    /// Data lines.
    pub line: u32,
    /// Reference lines, error bars, crosses.
    pub thin: u32,
}

/// Marker radii in pixels.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Markers {
    /// Points of a scatter plot.
    pub scatter: u32,
    /// Points on a line.
    pub line: u32,
}

/// The figures' style (see the [module docs](self) and the comment at the top of `www/lab/figure-style.js`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureStyle {
    /// One colour per series, cycled ([`FigureStyle::series_colour`]).
    pub series: Vec<Colour>,
    /// Reference lines, their labels, notes.
    pub reference: Colour,
    /// Heatmap cells without a finite value.
    pub missing: Colour,
    /// A path drawn over a landscape.
    pub trajectory: Colour,
    /// The marked centre θ* of a landscape.
    pub centre: Colour,
    /// Evenly spaced stops of the fills' colour map (viridis), see [`FigureStyle::colour_map`].
    pub colour_map: Vec<Colour>,
    /// Evenly spaced stops of the ramp for lines coloured by a value (used by the page).
    pub line_ramp: Vec<Colour>,
    /// Font family and sizes.
    pub font: Fonts,
    /// Line widths.
    pub stroke: Strokes,
    /// Marker radii.
    pub marker: Markers,
}

impl FigureStyle {
    /// Parses the `FIGURE_STYLE` object of a style file's text; the error names what is wrong.
    pub fn parse(source: &str) -> std::result::Result<FigureStyle, String> {
        let at = source.find(MARKER).ok_or_else(|| format!("no `{MARKER}` in the figure style file"))?;
        let rest = &source[at + MARKER.len()..];
        let open = rest.find('{').ok_or("no `{` after FIGURE_STYLE")?;
        // one JSON value, whatever JavaScript follows it
        let mut values = serde_json::Deserializer::from_str(&rest[open..]).into_iter::<FigureStyle>();
        let style = values.next().ok_or("FIGURE_STYLE is empty")?.map_err(|e| format!("FIGURE_STYLE is not the expected JSON: {e}"))?;
        for (name, stops, least) in [("series", &style.series, 1), ("colour_map", &style.colour_map, 2), ("line_ramp", &style.line_ramp, 2)] {
            if stops.len() < least {
                return Err(format!("FIGURE_STYLE.{name} needs at least {least} colours, has {}", stops.len()));
            }
        }
        Ok(style)
    }

    /// The colour of series `k` (0, 1, …): the palette, cycled.
    pub fn series_colour(&self, k: usize) -> RGBColor {
        self.series[k % self.series.len()].0
    }

    /// The colour map at `t` ∈ [0, 1] (clamped), linearly interpolated between its evenly spaced stops and
    /// rounded to whole channel values.
    pub fn colour_map(&self, t: f64) -> RGBColor {
        let v = &self.colour_map;
        let x = t.clamp(0.0, 1.0) * (v.len() - 1) as f64;
        let i = (x.floor() as usize).min(v.len() - 2);
        let f = x - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (v[i].0, v[i + 1].0);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// A font of the style's family at `size` pixels, e.g. `style().font(style().font.title)`, for plotters.
    pub fn font(&self, size: u32) -> (&str, u32) {
        (self.font.family.as_str(), size)
    }
}

/// The style of `www/lab/figure-style.js`, parsed on first use.
pub fn style() -> &'static FigureStyle {
    static STYLE: OnceLock<FigureStyle> = OnceLock::new();
    STYLE.get_or_init(|| FigureStyle::parse(SOURCE).unwrap_or_else(|e| panic!("www/lab/figure-style.js: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_style_file_parses() {
        let s = FigureStyle::parse(SOURCE).unwrap();
        assert_eq!(s.series_colour(0), RGBColor(31, 119, 180), "the palette starts with tab10's blue");
        assert_eq!(s.series_colour(s.series.len()), s.series_colour(0), "the palette is cycled");
    }

    #[test]
    fn the_colour_map_runs_from_viridis_violet_to_yellow_through_its_stops() {
        let s = style();
        assert_eq!((s.colour_map(-1.0), s.colour_map(0.0)), (RGBColor(68, 1, 84), RGBColor(68, 1, 84)));
        assert_eq!((s.colour_map(1.0), s.colour_map(2.0)), (RGBColor(253, 231, 37), RGBColor(253, 231, 37)));
        assert_eq!(s.colour_map(0.5), RGBColor(33, 144, 141), "the middle stop");
        assert_eq!(s.colour_map(1.0 / 16.0), RGBColor(70, 23, 103), "half-way between the first two stops, rounded");
    }

    #[test]
    fn a_bad_colour_or_a_missing_object_is_named() {
        let bad = SOURCE.replacen("\"#1f77b4\"", "\"#1f77b\"", 1);
        assert!(FigureStyle::parse(&bad).unwrap_err().contains("\"#1f77b\""));
        assert!(FigureStyle::parse("export const OTHER = {};").unwrap_err().contains("FIGURE_STYLE"));
    }
}
