//! Mini-batch index streams, one per model, seeded per model and identical on every platform.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::Sampling;
use crate::error::{LabError, Result};

/// Stream of the ChaCha generator used for sampling (stream 0 is the one initialisation uses).
const SAMPLING_STREAM: u64 = 1;

/// A [`Sampler`]'s position, per model (see [`Sampler::state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamplerState {
    /// Position of each model's ChaCha8 generator (its 32-bit word count on the sampling stream).
    pub word_pos: Vec<u128>,
    /// Each model's current permutation of the training examples (identity when sampling with replacement).
    pub perms: Vec<Vec<u32>>,
    /// Each model's next position in its permutation.
    pub cursor: Vec<usize>,
}

/// Produces `[model][row]` index blocks, step after step, for K models over a data set of `n` examples.
#[derive(Clone, Debug)]
pub struct Sampler {
    sampling: Sampling,
    n: usize,
    batch: usize,
    rngs: Vec<ChaCha8Rng>,
    perms: Vec<Vec<u32>>,
    cursor: Vec<usize>,
}

impl Sampler {
    /// A sampler for models seeded with `seeds` (the same seed gives the same batch sequence).
    /// `batch ≤ n` is required for [`Sampling::Shuffle`] (checked by the config).
    pub fn new(sampling: Sampling, n: usize, batch: usize, seeds: &[u64]) -> Self {
        let rngs: Vec<ChaCha8Rng> = seeds
            .iter()
            .map(|&s| {
                let mut r = ChaCha8Rng::seed_from_u64(s);
                r.set_stream(SAMPLING_STREAM);
                r
            })
            .collect();
        let k = seeds.len();
        Sampler { sampling, n, batch, rngs, perms: vec![(0..n as u32).collect(); k], cursor: vec![n; k] }
    }

    /// Appends one step's indices for every model (`K × batch` values) to `out`.
    pub fn next_step(&mut self, out: &mut Vec<u32>) {
        self.next_step_with(out, self.batch);
    }

    /// [`Sampler::next_step`] with `batch` rows per model for this step (a batch-size schedule; `batch ≤ n`
    /// under shuffling). Shuffling reshuffles when fewer than `batch` examples remain in the permutation.
    pub fn next_step_with(&mut self, out: &mut Vec<u32>, batch: usize) {
        for m in 0..self.rngs.len() {
            match self.sampling {
                Sampling::WithReplacement => {
                    let rng = &mut self.rngs[m];
                    out.extend((0..batch).map(|_| rng.random_range(0..self.n as u32)));
                }
                Sampling::Shuffle => {
                    if self.cursor[m] + batch > self.n {
                        self.perms[m].shuffle(&mut self.rngs[m]);
                        self.cursor[m] = 0;
                    }
                    let c = self.cursor[m];
                    out.extend_from_slice(&self.perms[m][c..c + batch]);
                    self.cursor[m] += batch;
                }
            }
        }
    }

    /// Where every model's stream stands (what a checkpoint saves): the generators' positions, the
    /// current permutations and the cursors into them.
    pub fn state(&self) -> SamplerState {
        SamplerState { word_pos: self.rngs.iter().map(ChaCha8Rng::get_word_pos).collect(), perms: self.perms.clone(), cursor: self.cursor.clone() }
    }

    /// Puts a sampler built with the same seeds back where [`Sampler::state`] found it (the generators are
    /// re-seeded from `seeds`, so only their positions are saved). Refuses a state of another K or data size.
    pub fn restore(&mut self, state: &SamplerState) -> Result<()> {
        let k = self.rngs.len();
        if state.word_pos.len() != k || state.perms.len() != k || state.cursor.len() != k {
            return Err(LabError::Data(format!("the sampler state holds {} models, this run {k}", state.word_pos.len())));
        }
        for (m, (perm, &c)) in state.perms.iter().zip(&state.cursor).enumerate() {
            let mut seen = vec![false; self.n];
            let ok = perm.len() == self.n && perm.iter().all(|&i| (i as usize) < self.n && !std::mem::replace(&mut seen[i as usize], true));
            if !ok || c > self.n {
                return Err(LabError::Data(format!("the sampler state of model {m} is not a permutation of the {} training examples with a cursor ≤ {}", self.n, self.n)));
            }
        }
        for (r, &w) in self.rngs.iter_mut().zip(&state.word_pos) {
            r.set_word_pos(w);
        }
        self.perms.clone_from(&state.perms);
        self.cursor.clone_from(&state.cursor);
        Ok(())
    }

    /// Steps in one pass over the data under shuffling (`⌊n / B⌋`).
    pub fn steps_per_epoch(&self) -> usize {
        self.n / self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampler_restored_from_its_state_continues_with_the_same_batches() {
        for sampling in [Sampling::Shuffle, Sampling::WithReplacement] {
            let mut a = Sampler::new(sampling, 23, 5, &[4, 9]);
            let mut skip = Vec::new();
            for _ in 0..7 {
                a.next_step(&mut skip);
            }
            let mut b = Sampler::new(sampling, 23, 5, &[4, 9]);
            b.restore(&a.state()).unwrap();
            let (mut xa, mut xb) = (Vec::new(), Vec::new());
            for _ in 0..9 {
                a.next_step(&mut xa);
                b.next_step(&mut xb);
            }
            assert_eq!(xa, xb, "{sampling:?}");
        }
    }

    #[test]
    fn a_sampler_state_that_is_not_a_permutation_is_refused() {
        let mut s = Sampler::new(Sampling::Shuffle, 4, 2, &[1]);
        let mut st = s.state();
        st.perms[0] = vec![0, 1, 1, 3];
        assert!(s.restore(&st).unwrap_err().to_string().contains("not a permutation"));
        st.perms[0] = vec![0, 1, 2, 3];
        st.cursor[0] = 5;
        assert!(s.restore(&st).is_err());
        assert!(Sampler::new(Sampling::Shuffle, 4, 2, &[1, 2]).restore(&s.state()).unwrap_err().to_string().contains("1 models"));
    }

    #[test]
    fn shuffling_visits_every_example_once_per_epoch() {
        let mut s = Sampler::new(Sampling::Shuffle, 20, 5, &[3]);
        let mut idx = Vec::new();
        for _ in 0..4 {
            s.next_step(&mut idx);
        }
        idx.sort();
        assert_eq!(idx, (0..20).collect::<Vec<u32>>());
    }

    #[test]
    fn shuffling_drops_the_remainder_and_reshuffles() {
        let mut s = Sampler::new(Sampling::Shuffle, 7, 3, &[1]);
        let mut a = Vec::new();
        s.next_step(&mut a);
        s.next_step(&mut a);
        let mut b = Vec::new();
        s.next_step(&mut b);
        s.next_step(&mut b);
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.dedup();
        sb.sort();
        sb.dedup();
        assert_eq!(sb.len(), 6, "no repeats inside an epoch");
        assert_ne!(a, b, "the second epoch uses a new permutation");
    }

    #[test]
    fn each_model_follows_its_own_seed() {
        let mut s = Sampler::new(Sampling::WithReplacement, 1000, 8, &[1, 2, 1]);
        let mut idx = Vec::new();
        s.next_step(&mut idx);
        assert_eq!(idx[0..8], idx[16..24], "same seed, same batch");
        assert_ne!(idx[0..8], idx[8..16], "other seed, other batch");
        assert!(idx.iter().all(|&i| i < 1000));
    }

    #[test]
    fn sampling_with_replacement_repeats_indices_eventually() {
        let mut s = Sampler::new(Sampling::WithReplacement, 10, 10, &[5]);
        let mut idx = Vec::new();
        s.next_step(&mut idx);
        let mut u = idx.clone();
        u.sort();
        u.dedup();
        assert!(u.len() < 10, "10 draws from 10 with replacement are all distinct with probability 3.6e-4 only");
    }
}
