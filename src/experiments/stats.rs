//! Statistics for the claims reports (filled in next).
