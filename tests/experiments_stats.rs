//! The statistics behind the claims reports, checked against hand-computed values, exact distributions,
//! a brute-force permutation test, nalgebra's least squares, and the coverage of confidence intervals in
//! simulation.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use sgd_lab::experiments::stats::{geometric_mean, mean, mean_ci, median, ols, pearson, ranks, sample_std, spearman};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn ranks_give_ties_the_average_of_the_ranks_they_span() {
    assert_eq!(ranks(&[10.0, 20.0, 20.0, 30.0]), vec![1.0, 2.5, 2.5, 4.0]);
    assert_eq!(ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
    assert_eq!(ranks(&[5.0, 5.0, 5.0]), vec![2.0, 2.0, 2.0]);
    assert!(ranks(&[]).is_empty());
}

#[test]
fn spearman_of_a_monotone_nonlinear_relation_is_exactly_one() {
    let x: Vec<f64> = (1..=12).map(|i| i as f64 * 0.37).collect();
    let y: Vec<f64> = x.iter().map(|v| v.exp() + v.powi(3)).collect();
    let c = spearman(&x, &y).expect("12 distinct pairs");
    assert_eq!(c.rho, 1.0);
    assert_eq!(c.n, 12);
    assert_eq!(c.p_value, 0.0, "the t approximation gives 0 for a perfect correlation");
}

#[test]
fn spearman_of_a_reversed_monotone_relation_is_exactly_minus_one() {
    let x: Vec<f64> = (1..=7).map(|i| i as f64).collect();
    let y: Vec<f64> = x.iter().map(|v| 1.0 / v).collect();
    let c = spearman(&x, &y).expect("7 distinct pairs");
    assert_eq!(c.rho, -1.0);
    assert!(close(c.p_value, 2.0 / 5040.0, 1e-15), "exact p for n = 7 is 2/7!, got {}", c.p_value);
}

#[test]
fn spearman_ignores_pairs_with_a_non_finite_value() {
    let x = [1.0, 2.0, f64::NAN, 3.0, 4.0, 5.0, f64::INFINITY];
    let y = [2.0, 4.0, 1.0, 9.0, f64::NEG_INFINITY, 16.0, 0.0];
    let c = spearman(&x, &y).expect("4 finite pairs remain");
    assert_eq!(c.n, 4);
    assert_eq!(c.rho, 1.0);
    let clean = spearman(&[1.0, 2.0, 3.0, 5.0], &[2.0, 4.0, 9.0, 16.0]).unwrap();
    assert_eq!(c, clean);
}

#[test]
fn spearman_is_none_for_constant_input_or_fewer_than_three_pairs() {
    assert!(spearman(&[1.0, 2.0, 3.0, 4.0], &[7.0, 7.0, 7.0, 7.0]).is_none());
    assert!(spearman(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]).is_none());
    assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_none());
    assert!(spearman(&[1.0, 2.0, f64::NAN], &[1.0, 2.0, 3.0]).is_none(), "only 2 finite pairs");
    assert!(spearman(&[1.0, 2.0, 3.0], &[1.0, 2.0]).is_none(), "lengths differ");
}

#[test]
fn the_exact_p_value_of_a_perfect_correlation_of_five_is_two_in_a_hundred_and_twenty() {
    let c = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.1, 0.5, 0.7, 2.0, 9.0]).unwrap();
    assert_eq!(c.rho, 1.0);
    assert!(close(c.p_value, 2.0 / 120.0, 1e-15), "got {}", c.p_value);
}

#[test]
fn the_exact_p_value_counts_permutations_at_least_as_extreme() {
    // x = 1..4, y ranks [1, 2, 4, 3]: ρ = 0.8. Of the 24 permutations, |ρ| ≥ 0.8 holds for ρ = ±1 (2) and
    // ρ = ±0.8 (3 each: one adjacent swap of the identity or of the reversal), so p = 8/24.
    let c = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 4.0, 3.0]).unwrap();
    assert!(close(c.rho, 0.8, 1e-15));
    assert!(close(c.p_value, 8.0 / 24.0, 1e-15), "got {}", c.p_value);
}

#[test]
fn the_t_approximation_for_thirty_pairs_agrees_with_a_monte_carlo_permutation_test() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 30;
    let x: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    // a weak relation, so that the p-value lands in the range where its accuracy matters (≈ 0.01–0.2)
    let y: Vec<f64> = x.iter().map(|v| 0.35 * v + rng.sample::<f64, _>(StandardNormal)).collect();
    let c = spearman(&x, &y).unwrap();
    let (rx, mut ry) = (ranks(&x), ranks(&y));
    let observed = c.rho.abs();
    let shuffles = 20_000;
    let mut extreme = 0;
    for _ in 0..shuffles {
        ry.shuffle(&mut rng);
        if pearson(&rx, &ry).unwrap().abs() >= observed - 1e-12 {
            extreme += 1;
        }
    }
    let p_mc = extreme as f64 / shuffles as f64;
    // Monte Carlo standard error √(p(1−p)/20000) ≤ 0.0035; the t approximation itself is off by a few
    // thousandths at n = 30. Allow 0.015 in all.
    assert!(c.p_value > 0.005 && c.p_value < 0.3, "the seed should give a p-value in the interesting range, got {}", c.p_value);
    assert!(close(c.p_value, p_mc, 0.015), "t approximation {} vs permutation {}", c.p_value, p_mc);
}

#[test]
fn pearson_of_an_exact_line_is_one_and_of_constant_input_is_none() {
    assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 5.0, 7.0]).unwrap(), 1.0, 1e-15));
    assert!(close(pearson(&[1.0, 2.0, 3.0], &[7.0, 5.0, 3.0]).unwrap(), -1.0, 1e-15));
    assert!(pearson(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]).is_none());
}

fn design(x1: &[f64], x2: &[f64]) -> Vec<Vec<f64>> {
    x1.iter().zip(x2).map(|(&a, &b)| vec![1.0, a, b]).collect()
}

#[test]
fn ols_recovers_known_coefficients_exactly_on_noise_free_data() {
    let x1: Vec<f64> = (0..10).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
    let x2: Vec<f64> = (0..10).map(|i| (i as f64).powi(2) * 1e-3).collect();
    let y: Vec<f64> = x1.iter().zip(&x2).map(|(a, b)| 1.5 - 2.0 * a + 40.0 * b).collect();
    let fit = ols(&design(&x1, &x2), &y).expect("full-rank design");
    for (got, want) in fit.coefficients.iter().zip([1.5, -2.0, 40.0]) {
        assert!(close(*got, want, 1e-10 * want.abs()), "coefficient {got} vs {want}");
    }
    assert_eq!(fit.n, 10);
    assert_eq!(fit.residual_dof, 7);
    assert!(fit.residual_std < 1e-12);
    assert!(close(fit.r_squared, 1.0, 1e-12));
}

#[test]
fn ols_drops_rows_with_a_non_finite_value() {
    let rows = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![1.0, f64::NAN], vec![1.0, 2.0], vec![1.0, 3.0]];
    let y = [1.0, 3.0, 100.0, 5.0, f64::INFINITY];
    let fit = ols(&rows, &y).expect("3 finite rows for 2 coefficients");
    assert_eq!(fit.n, 3);
    assert!(close(fit.coefficients[0], 1.0, 1e-12) && close(fit.coefficients[1], 2.0, 1e-12), "{:?}", fit.coefficients);
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn ols_agrees_with_nalgebras_svd_least_squares_on_random_data() {
    use nalgebra::{DMatrix, DVector};
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (n, p) = (40, 5);
    let rows: Vec<Vec<f64>> = (0..n).map(|_| std::iter::once(1.0).chain((1..p).map(|_| rng.sample(StandardNormal))).collect()).collect();
    let y: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let fit = ols(&rows, &y).unwrap();
    let a = DMatrix::from_fn(n, p, |i, j| rows[i][j]);
    let b = DVector::from_vec(y.clone());
    let reference = a.clone().svd(true, true).solve(&b, 1e-14).unwrap();
    for j in 0..p {
        assert!(close(fit.coefficients[j], reference[j], 1e-9), "β[{j}]: {} vs {}", fit.coefficients[j], reference[j]);
    }
    // covariance s²(AᵀA)⁻¹ from the normal equations, well conditioned here
    let inv = (a.transpose() * &a).try_inverse().unwrap();
    let s2 = fit.residual_std.powi(2);
    for i in 0..p {
        for j in 0..p {
            assert!(close(fit.covariance[i * p + j], s2 * inv[(i, j)], 1e-9), "Σ[{i}][{j}]");
        }
    }
}

#[test]
fn ols_is_none_for_a_rank_deficient_design() {
    // the third column is the sum of the first two
    let rows: Vec<Vec<f64>> = (0..8).map(|i| vec![1.0, i as f64, 1.0 + i as f64]).collect();
    let y: Vec<f64> = (0..8).map(|i| (i * i) as f64).collect();
    assert!(ols(&rows, &y).is_none());
    let zero_column: Vec<Vec<f64>> = (0..8).map(|i| vec![1.0, i as f64, 0.0]).collect();
    assert!(ols(&zero_column, &y).is_none());
}

#[test]
fn ols_is_none_without_more_rows_than_coefficients() {
    let rows = vec![vec![1.0, 0.0], vec![1.0, 1.0]];
    assert!(ols(&rows, &[1.0, 2.0]).is_none());
}

#[test]
fn the_95_percent_interval_of_b_plus_c_covers_the_truth_about_95_percent_of_the_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(2017);
    let (a, b, c) = (0.5, 1.2, -0.7);
    let trials = 2000;
    let mut covered = 0;
    for _ in 0..trials {
        let x1: Vec<f64> = (0..15).map(|_| rng.random_range(-2.0..2.0)).collect();
        let x2: Vec<f64> = (0..15).map(|_| rng.random_range(-1.0..3.0)).collect();
        let y: Vec<f64> = x1.iter().zip(&x2).map(|(u, v)| a + b * u + c * v + 0.8 * rng.sample::<f64, _>(StandardNormal)).collect();
        let e = ols(&design(&x1, &x2), &y).unwrap().combination(&[0.0, 1.0, 1.0], 0.95);
        assert_eq!(e.dof, 12);
        if e.ci_low <= b + c && b + c <= e.ci_high {
            covered += 1;
        }
    }
    // binomial(2000, 0.95) has standard deviation 0.0049: 0.93–0.97 is about ±4 of them
    let rate = covered as f64 / trials as f64;
    assert!((0.93..=0.97).contains(&rate), "coverage {rate}");
}

#[test]
fn a_combination_without_residual_degrees_of_freedom_has_nan_bounds() {
    let fit = ols(&[vec![1.0, 0.0], vec![1.0, 1.0], vec![1.0, 2.0]], &[0.0, 1.0, 2.5]).unwrap();
    let mut exact = fit.clone();
    exact.residual_dof = 0;
    let e = exact.combination(&[0.0, 1.0], 0.95);
    assert!(e.ci_low.is_nan() && e.ci_high.is_nan());
    assert!(fit.combination(&[0.0, 1.0], 0.95).ci_low.is_finite());
}

#[test]
fn mean_ci_of_one_to_ten_matches_the_hand_computed_interval() {
    let x: Vec<f64> = (1..=10).map(f64::from).collect();
    let e = mean_ci(&x, 0.95);
    // s² = 82.5 / 9, SE = s/√10, t(0.975; 9) = 2.2621571627409915
    let se = (82.5f64 / 9.0).sqrt() / 10f64.sqrt();
    let half = 2.262_157_162_740_991 * se;
    assert_eq!(e.value, 5.5);
    assert_eq!(e.dof, 9);
    assert!(close(e.std_error, se, 1e-12));
    assert!(close(e.ci_low, 5.5 - half, 1e-9) && close(e.ci_high, 5.5 + half, 1e-9), "{e:?} vs ±{half}");
}

#[test]
fn descriptive_statistics_match_hand_computed_values() {
    assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    assert!(mean(&[]).is_nan());
    assert!(close(sample_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), (32.0f64 / 7.0).sqrt(), 1e-14));
    assert!(sample_std(&[1.0]).is_nan());
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&[f64::NAN, 5.0, f64::INFINITY, 1.0]), 3.0, "non-finite values are ignored");
    assert!(median(&[]).is_nan());
    assert!(close(geometric_mean(&[1e-3, 1e-1]), 1e-2, 1e-15));
    assert!(geometric_mean(&[1.0, 0.0]).is_nan());
}
