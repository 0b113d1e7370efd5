//! The SHA-256 of every decompressed IDX file of the data sets the lab fetches (`pinned-idx.sha256`, the
//! same list `scripts/fetch-data` checks), and the digest helpers the provenance records use.
//!
//! Pins are of the *decompressed* files, so how a file was gzipped does not matter.

use sha2::{Digest, Sha256};

/// `sha256  set/file` lines, as `sha256sum` writes them.
const PINNED: &str = include_str!("pinned-idx.sha256");

/// The pinned SHA-256 (lower-case hex) of `file` of data set `set` (e.g. `"fashion-mnist"`,
/// `"train-images-idx3-ubyte"`), if the lab pins it.
pub fn pinned_sha256(set: &str, file: &str) -> Option<&'static str> {
    let want = format!("{set}/{file}");
    PINNED.lines().filter_map(|l| l.split_once(char::is_whitespace)).find(|(_, name)| name.trim() == want).map(|(hash, _)| hash)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of the little-endian bytes of `values` (row indices, as u32).
pub fn sha256_u32_le(values: &[u32]) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

/// Lower-case hex SHA-256 of the little-endian bytes of `values` (f32 features).
pub fn sha256_f32_le(values: &[f32]) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_both_data_sets_is_pinned() {
        for set in ["fashion-mnist", "mnist"] {
            for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
                let h = pinned_sha256(set, f).unwrap_or_else(|| panic!("{set}/{f} is not pinned"));
                assert!(h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()), "{h}");
            }
        }
        assert_eq!(pinned_sha256("mnist", "other"), None);
    }

    #[test]
    fn sha256_of_abc_is_the_fips_180_2_example() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
