//! The report figures: what each SVG contains (title, labels, one marker per drawn point, error bars,
//! heatmap cells, reference lines), what it leaves out and says so, and which inputs it refuses.
//! Set `SGD_LAB_FIGURES_DIR` to a folder to also write the figures there for a look.

use sgd_lab::error::LabError;
use sgd_lab::experiments::figures::{heatmap_svg, lines_svg, panels_svg, scatter_svg, Axis, RefKind, RefLine, Series};

fn occurrences(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

/// `<line` and `<polyline` elements: plotters writes paths as polylines and single segments as lines.
fn line_elements(svg: &str) -> usize {
    occurrences(svg, "<line") + occurrences(svg, "<polyline")
}

/// The contents of the `<text>` elements, trimmed (plotters writes each on a line of its own).
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text").skip(1).filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim())).collect()
}

fn keep(name: &str, svg: &str) {
    if let Some(dir) = std::env::var_os("SGD_LAB_FIGURES_DIR") {
        std::fs::write(std::path::Path::new(&dir).join(name), svg).expect("writing the figure");
    }
}

fn three_series() -> Vec<Series> {
    (0..3).map(|k| Series::new(format!("B = {}", 32 << k), (0..4).map(|i| (1e-3 * 3f64.powi(i), 0.2 + 0.1 * k as f64 + 0.05 * i as f64)).collect())).collect()
}

fn config_message(e: LabError) -> (String, String) {
    match e {
        LabError::Config { field, message } => (field, message),
        other => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn a_scatter_has_its_title_axis_labels_and_every_series_name() {
    let svg = scatter_svg("Sharpness against η", &Axis::log("learning rate η"), &Axis::linear("sharpness λ_max"), &three_series(), &[]).unwrap();
    keep("scatter.svg", &svg);
    assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    for text in ["Sharpness against η", "learning rate η", "sharpness λ_max", "B = 32", "B = 64", "B = 128"] {
        assert!(texts(&svg).contains(&text), "the figure lacks the text `{text}`");
    }
    assert!(!svg.contains("not shown"), "no point was left out");
}

#[test]
fn a_scatter_of_three_series_of_four_points_draws_twelve_markers() {
    let svg = scatter_svg("markers", &Axis::linear("x"), &Axis::linear("y"), &three_series(), &[]).unwrap();
    assert_eq!(occurrences(&svg, "<circle"), 12);
}

#[test]
fn a_nan_point_is_skipped_and_the_note_says_one_point_not_shown() {
    let mut series = three_series();
    series[1].points[2].1 = f64::NAN;
    let svg = scatter_svg("diverged", &Axis::linear("x"), &Axis::linear("y"), &series, &[]).unwrap();
    assert_eq!(occurrences(&svg, "<circle"), 11);
    assert!(texts(&svg).contains(&"1 point not shown: diverged or non-finite"), "the note is missing");
}

#[test]
fn a_zero_on_a_log_axis_is_skipped_and_counted() {
    let mut series = three_series();
    series[0].points[0].1 = 0.0;
    series[2].points[3].0 = f64::INFINITY;
    let svg = scatter_svg("log y", &Axis::linear("x"), &Axis::log("loss"), &series, &[]).unwrap();
    keep("scatter_log.svg", &svg);
    assert_eq!(occurrences(&svg, "<circle"), 10);
    assert!(texts(&svg).contains(&"2 points not shown: 1 diverged or non-finite, 1 ≤ 0 on a log axis"), "the note is missing");
}

#[test]
fn error_bars_add_line_elements() {
    let plain = three_series();
    let mut with_bars = plain.clone();
    with_bars[0].errors = Some(vec![0.01, 0.02, f64::NAN, 0.03]);
    let a = scatter_svg("bars", &Axis::linear("x"), &Axis::linear("y"), &plain, &[]).unwrap();
    let b = scatter_svg("bars", &Axis::linear("x"), &Axis::linear("y"), &with_bars, &[]).unwrap();
    keep("scatter_bars.svg", &b);
    // three bars (the NaN half-width draws none), each a vertical stroke and two caps
    assert_eq!(line_elements(&b) - line_elements(&a), 9);
}

#[test]
fn error_bars_of_the_wrong_length_are_an_error_naming_both_lengths() {
    let mut series = three_series();
    series[2].errors = Some(vec![0.1; 3]);
    let (field, message) = config_message(scatter_svg("t", &Axis::linear("x"), &Axis::linear("y"), &series, &[]).unwrap_err());
    assert_eq!(field, "figure.series[2].errors");
    assert!(message.contains('3') && message.contains('4'), "{message}");
}

#[test]
fn a_line_plot_draws_one_polyline_per_series_and_breaks_it_at_a_skipped_point() {
    let mut series = three_series();
    let svg = lines_svg("lines", &Axis::log("η"), &Axis::linear("accuracy"), &series, &[]).unwrap();
    assert!(svg.contains("B = 128"));
    assert_eq!(occurrences(&svg, "<circle"), 12, "a small marker on every point");
    let whole = line_elements(&svg);
    series[0].points[1].1 = f64::NAN;
    let broken = lines_svg("lines", &Axis::log("η"), &Axis::linear("accuracy"), &series, &[]).unwrap();
    assert_eq!(occurrences(&broken, "<circle"), 11);
    // points 0 | 2, 3: the lone point 0 has no line, so the series still draws one polyline
    assert_eq!(line_elements(&broken), whole);
    assert!(broken.contains("1 point not shown"));
}

#[test]
fn a_dashed_series_is_drawn_as_many_short_strokes() {
    let mut series = three_series();
    let solid = lines_svg("dashes", &Axis::linear("x"), &Axis::linear("y"), &series, &[]).unwrap();
    series[1].dashed = true;
    let dashed = lines_svg("dashes", &Axis::linear("x"), &Axis::linear("y"), &series, &[]).unwrap();
    keep("lines_dashed.svg", &dashed);
    assert!(line_elements(&dashed) > line_elements(&solid) + 10);
}

#[test]
fn reference_lines_appear_with_their_labels() {
    let refs = [
        RefLine { label: "chance".into(), kind: RefKind::Horizontal(0.25) },
        RefLine { label: "η = 0.01".into(), kind: RefKind::Vertical(0.01) },
        RefLine { label: "y = 30·x".into(), kind: RefKind::Proportional(30.0) },
    ];
    let plain = scatter_svg("refs", &Axis::log("η"), &Axis::log("y"), &three_series(), &[]).unwrap();
    let svg = scatter_svg("refs", &Axis::log("η"), &Axis::log("y"), &three_series(), &refs).unwrap();
    keep("scatter_refs.svg", &svg);
    for r in &refs {
        assert!(texts(&svg).contains(&r.label.as_str()), "the label `{}` is missing", r.label);
    }
    assert_eq!(line_elements(&svg), line_elements(&plain) + 3);
}

#[test]
fn a_horizontal_or_vertical_reference_line_widens_the_range_to_stay_in_view() {
    let refs = [RefLine { label: "far above".into(), kind: RefKind::Horizontal(1e3) }, RefLine { label: "far left".into(), kind: RefKind::Vertical(1e-6) }];
    let svg = scatter_svg("refs", &Axis::log("η"), &Axis::log("y"), &three_series(), &refs).unwrap();
    let printed = texts(&svg);
    assert!(printed.contains(&"far above") && printed.contains(&"far left"));
    assert!(printed.contains(&"1000") && printed.contains(&"1e-6"), "the axes reach the lines: {printed:?}");
}

#[test]
fn a_ratio_line_with_no_visible_point_is_left_out() {
    // y = −x is negative wherever x > 0: nothing of it lies on log axes
    let refs = [RefLine { label: "negative".into(), kind: RefKind::Proportional(-1.0) }];
    let plain = scatter_svg("refs", &Axis::log("η"), &Axis::log("y"), &three_series(), &[]).unwrap();
    let svg = scatter_svg("refs", &Axis::log("η"), &Axis::log("y"), &three_series(), &refs).unwrap();
    assert!(!texts(&svg).contains(&"negative"));
    assert_eq!(line_elements(&svg), line_elements(&plain));
}

#[test]
fn no_series_or_no_finite_points_is_an_error() {
    let (field, message) = config_message(scatter_svg("t", &Axis::linear("x"), &Axis::linear("y"), &[], &[]).unwrap_err());
    assert_eq!(field, "figure.series");
    assert!(message.contains("no series"), "{message}");
    let empty = [Series::new("empty", vec![])];
    let (_, message) = config_message(lines_svg("t", &Axis::linear("x"), &Axis::linear("y"), &empty, &[]).unwrap_err());
    assert!(message.contains("every series is empty"), "{message}");
    let nan = [Series::new("diverged", vec![(1.0, f64::NAN), (f64::INFINITY, 2.0)])];
    let (_, message) = config_message(scatter_svg("t", &Axis::linear("x"), &Axis::linear("y"), &nan, &[]).unwrap_err());
    assert!(message.contains("no finite points") && message.contains("2 points"), "{message}");
}

fn grid() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let bs = vec![32.0, 64.0, 128.0, 256.0];
    let lrs = vec![0.001, 0.01, 0.1];
    let mut values: Vec<f64> = (0..12).map(|k| 0.1 + 0.05 * k as f64).collect();
    values[5] = f64::NAN;
    (bs, lrs, values)
}

#[test]
fn a_three_by_four_heatmap_draws_twelve_cells_prints_values_and_marks_the_nan_cell() {
    let (bs, lrs, values) = grid();
    let svg = heatmap_svg("final loss", &Axis::log("batch size B"), &bs, &Axis::log("learning rate η"), &lrs, &values, "loss", &[]).unwrap();
    keep("heatmap.svg", &svg);
    assert!(svg.starts_with("<svg"));
    let printed = texts(&svg);
    for text in ["final loss", "batch size B", "learning rate η", "loss", "0.001", "128"] {
        assert!(printed.contains(&text), "the heatmap lacks the text `{text}`");
    }
    // the background and the 12 cells are the only rectangles (the colour bar is drawn with strokes)
    assert_eq!(occurrences(&svg, "<rect"), 1 + 12);
    for (k, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        let value = format!("{}", (v * 1000.0).round() / 1000.0);
        assert!(printed.contains(&value.as_str()), "cell {k} should print {value}");
    }
    assert!(!printed.iter().any(|t| t.contains("NaN")));
    assert!(svg.contains("1 cell diverged or non-finite"), "the note is missing");
    let clean: Vec<f64> = values.iter().map(|v| if v.is_nan() { 0.3 } else { *v }).collect();
    let plain = heatmap_svg("final loss", &Axis::log("batch size B"), &bs, &Axis::log("learning rate η"), &lrs, &clean, "loss", &[]).unwrap();
    assert_eq!(line_elements(&svg), line_elements(&plain) + 2, "the NaN cell is crossed out");
}

#[test]
fn a_large_heatmap_does_not_print_its_values() {
    let xs: Vec<f64> = (0..11).map(f64::from).collect();
    let values: Vec<f64> = (0..121).map(|k| k as f64 + 0.123).collect();
    let svg = heatmap_svg("big", &Axis::linear("x"), &xs, &Axis::linear("y"), &xs, &values, "v", &[]).unwrap();
    assert!(!texts(&svg).iter().any(|t| t.ends_with(".123")));
    assert_eq!(occurrences(&svg, "<rect"), 1 + 121);
}

#[test]
fn iso_ratio_lines_cross_the_heatmap_with_their_labels() {
    let (bs, lrs, values) = grid();
    let refs = [
        RefLine { label: "η/B = 1e-4".into(), kind: RefKind::Proportional(1e-4) },
        RefLine { label: "η/B = 1e-5".into(), kind: RefKind::Proportional(1e-5) },
        RefLine { label: "η/B = 1".into(), kind: RefKind::Proportional(1.0) },
    ];
    let plain = heatmap_svg("iso", &Axis::log("B"), &bs, &Axis::log("η"), &lrs, &values, "loss", &[]).unwrap();
    let svg = heatmap_svg("iso", &Axis::log("B"), &bs, &Axis::log("η"), &lrs, &values, "loss", &refs).unwrap();
    keep("heatmap_refs.svg", &svg);
    let printed = texts(&svg);
    assert!(printed.contains(&"η/B = 1e-4") && printed.contains(&"η/B = 1e-5"));
    // η/B = 1 needs η ≥ 32 on this grid: nothing of it is visible
    assert!(!printed.contains(&"η/B = 1"));
    // each visible line is a dark stroke under a white one
    assert_eq!(line_elements(&svg), line_elements(&plain) + 4);
}

#[test]
fn a_heatmap_with_the_wrong_number_of_values_is_an_error_naming_both_lengths() {
    let (bs, lrs, _) = grid();
    let e = heatmap_svg("t", &Axis::linear("B"), &bs, &Axis::linear("η"), &lrs, &[1.0; 11], "loss", &[]).unwrap_err();
    let (field, message) = config_message(e);
    assert_eq!(field, "figure.values");
    assert!(message.contains("11") && message.contains("12"), "{message}");
}

#[test]
fn a_heatmap_without_columns_or_rows_is_an_error() {
    assert!(heatmap_svg("t", &Axis::linear("B"), &[], &Axis::linear("η"), &[1.0], &[], "v", &[]).is_err());
    assert!(heatmap_svg("t", &Axis::linear("B"), &[1.0], &Axis::linear("η"), &[], &[], "v", &[]).is_err());
}

#[test]
fn a_ratio_line_on_a_heatmap_with_unsorted_values_is_an_error() {
    let refs = [RefLine { label: "η/B = 1e-4".into(), kind: RefKind::Proportional(1e-4) }];
    let e = heatmap_svg("t", &Axis::log("B"), &[64.0, 32.0, 128.0], &Axis::log("η"), &[0.01, 0.1], &[1.0; 6], "v", &refs).unwrap_err();
    let (field, message) = config_message(e);
    assert_eq!(field, "figure.refs[0]");
    assert!(message.contains("monotone"), "{message}");
}

#[test]
fn panels_lay_figures_out_in_a_grid() {
    let a = scatter_svg("first", &Axis::linear("x"), &Axis::linear("y"), &three_series(), &[]).unwrap();
    let b = lines_svg("second", &Axis::linear("x"), &Axis::linear("y"), &three_series(), &[]).unwrap();
    let c = scatter_svg("third", &Axis::linear("x"), &Axis::linear("y"), &three_series(), &[]).unwrap();
    let svg = panels_svg(&[a, b, c], 2).unwrap();
    keep("panels.svg", &svg);
    assert!(svg.starts_with("<svg width=\"1440\" height=\"960\""), "{}", &svg[..80]);
    assert_eq!(occurrences(&svg, "<svg"), 4);
    assert!(svg.contains("<svg x=\"720\" y=\"0\"") && svg.contains("<svg x=\"0\" y=\"480\""));
    assert!(svg.contains("first") && svg.contains("second") && svg.contains("third"));
    assert!(panels_svg(&[], 2).is_err());
    assert!(panels_svg(&["<p>not a figure</p>".to_string()], 1).is_err());
}

#[test]
fn a_log_axis_over_four_decades_labels_the_powers_of_ten() {
    let series = [Series::new("run", vec![(1e-4, 16.0), (1e-3, 64.0), (1e-2, 512.0), (0.3, 4096.0)])];
    let svg = lines_svg("decades", &Axis::log("η"), &Axis::log("B"), &series, &[]).unwrap();
    keep("lines_decades.svg", &svg);
    let printed = texts(&svg);
    for tick in ["1e-4", "0.001", "0.01", "0.1", "100", "1000"] {
        assert!(printed.contains(&tick), "no tick `{tick}` in {printed:?}");
    }
}

#[test]
fn a_heatmap_whose_every_cell_diverged_still_draws_and_says_so() {
    let svg = heatmap_svg("all diverged", &Axis::log("B"), &[128.0], &Axis::log("η"), &[0.5], &[f64::NAN], "loss", &[]).unwrap();
    assert_eq!(occurrences(&svg, "<rect"), 1 + 1);
    assert!(texts(&svg).contains(&"every cell diverged or is non-finite (grey, crossed out)"));
}
