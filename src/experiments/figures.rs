//! SVG figures for the experiment reports (filled in next).
