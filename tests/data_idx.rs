//! The IDX reader on tiny hand-built files: good ones parse (plain and gzipped); bad magic, truncated,
//! oversized or mismatched ones are refused with a `LabError::Data` naming the file, what and where.

use std::io::Write;

use sgd_lab::data::idx::{self, encode_images, encode_labels, gunzip, parse_images, parse_labels, LabelledImages};
use sgd_lab::data::RawData;
use sgd_lab::LabError;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn data_error(r: Result<impl std::fmt::Debug, LabError>) -> String {
    match r {
        Err(LabError::Data(m)) => m,
        other => panic!("expected a data error, got {other:?}"),
    }
}

fn three_images() -> Vec<u8> {
    encode_images(3, 2, 2, &[0, 1, 2, 3, 10, 11, 12, 13, 250, 251, 252, 253])
}

#[test]
fn a_good_image_file_parses_plain_and_gzipped() {
    for bytes in [three_images(), gz(&three_images())] {
        let im = parse_images("tiny", &bytes).unwrap();
        assert_eq!((im.n, im.rows, im.cols, im.dim()), (3, 2, 2, 4));
        assert_eq!(im.image(1), &[10, 11, 12, 13]);
        assert_eq!(im.pixels.len(), 12);
    }
}

#[test]
fn a_good_label_file_parses_plain_and_gzipped() {
    for bytes in [encode_labels(&[9, 0, 3]), gz(&encode_labels(&[9, 0, 3]))] {
        assert_eq!(parse_labels("tiny", &bytes).unwrap(), vec![9, 0, 3]);
    }
}

#[test]
fn a_bad_magic_number_is_refused_naming_the_file_and_offset_0() {
    let mut bytes = three_images();
    bytes[3] = 0x02;
    let m = data_error(parse_images("imgs.gz", &bytes));
    assert!(m.contains("imgs.gz") && m.contains("bad magic number 0x00000802") && m.contains("byte offset 0"), "{m}");
    // A label file is not an image file, and the other way round.
    let m = data_error(parse_images("labels-as-images", &encode_labels(&[1, 2])));
    assert!(m.contains("expected 0x00000803"), "{m}");
    let m = data_error(parse_labels("images-as-labels", &three_images()));
    assert!(m.contains("expected 0x00000801"), "{m}");
    // Something that is not IDX at all.
    let m = data_error(parse_labels("page.html", b"<!doctype html>"));
    assert!(m.contains("bad magic number") && m.contains("another format"), "{m}");
}

#[test]
fn a_truncated_header_is_refused_with_the_missing_bytes() {
    let m = data_error(parse_images("short", &three_images()[..10]));
    assert!(m.contains("short") && m.contains("truncated header") && m.contains("byte offsets 8..12") && m.contains("only 10 bytes"), "{m}");
    let m = data_error(parse_labels("empty", &[]));
    assert!(m.contains("truncated header"), "{m}");
}

#[test]
fn a_truncated_body_is_refused_with_the_offset_where_the_data_end() {
    let bytes = three_images();
    let m = data_error(parse_images("cut", &bytes[..bytes.len() - 1]));
    assert!(m.contains("cut: truncated") && m.contains("3 images × 2 × 2 = 12") && m.contains("byte offset 27"), "{m}");
    let m = data_error(parse_labels("cut-labels", &encode_labels(&[1, 2, 3])[..10]));
    assert!(m.contains("3 labels = 3") && m.contains("byte offset 10"), "{m}");
}

#[test]
fn trailing_bytes_are_refused_too() {
    let mut bytes = encode_labels(&[1, 2]);
    bytes.push(7);
    let m = data_error(parse_labels("long", &bytes));
    assert!(m.contains("1 unexpected byte(s)") && m.contains("byte offset 10"), "{m}");
}

#[test]
fn an_oversized_header_is_refused_before_any_allocation() {
    // 2^32−1 images of (2^32−1)² pixels: the product overflows u64; the reader must compare, not allocate.
    let mut bytes = encode_images(u32::MAX, u32::MAX, u32::MAX, &[]);
    bytes.extend_from_slice(&[0; 100]);
    let m = data_error(parse_images("hostile", &bytes));
    assert!(m.contains("hostile: truncated") && m.contains("4294967295 images"), "{m}");
    let m = data_error(parse_labels("hostile-labels", &{
        let mut b = encode_labels(&[]);
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        b
    }));
    assert!(m.contains("4294967295 labels"), "{m}");
}

#[test]
fn images_of_zero_rows_or_columns_are_refused() {
    let m = data_error(parse_images("flat", &encode_images(3, 0, 2, &[])));
    assert!(m.contains("0×2"), "{m}");
}

#[test]
fn a_corrupt_or_truncated_gzip_stream_is_refused_naming_the_file() {
    let z = gz(&three_images());
    let m = data_error(parse_images("train-images-idx3-ubyte.gz", &z[..z.len() - 6]));
    assert!(m.contains("train-images-idx3-ubyte.gz") && m.contains("gzip stream is corrupt or truncated"), "{m}");
    let mut bad = z.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    assert!(parse_images("flipped", &bad).is_err());
}

// The cap must admit Fashion-MNIST's training images (47 040 016 bytes).
const _: () = assert!(idx::MAX_DECOMPRESSED_BYTES >= 47_040_016);

#[test]
fn a_gzip_bomb_is_stopped_at_the_cap() {
    let z = gz(&vec![0u8; 1 << 20]);
    let m = data_error(gunzip("bomb.gz", &z, 1000));
    assert!(m.contains("bomb.gz") && m.contains("more than 1000 bytes"), "{m}");
    assert_eq!(gunzip("ok.gz", &z, 1 << 20).unwrap().len(), 1 << 20);
}

#[test]
fn images_and_labels_of_different_counts_are_refused() {
    let images = parse_images("i", &three_images()).unwrap();
    let m = data_error(LabelledImages::new("tiny train", images, vec![1, 2], 10));
    assert!(m.contains("tiny train: 3 images but 2 labels"), "{m}");
}

#[test]
fn a_label_beyond_the_classes_is_refused_with_its_offset() {
    let m = data_error(LabelledImages::parse("tiny", "i", &three_images(), "l", &encode_labels(&[1, 12, 2]), 10));
    assert!(m.contains("label 12 of example 1") && m.contains("byte offset 9"), "{m}");
}

#[test]
fn training_and_test_images_of_different_sizes_are_refused() {
    let train = LabelledImages::parse("a", "i", &three_images(), "l", &encode_labels(&[0, 1, 0]), 2).unwrap();
    let test = LabelledImages::parse("b", "i", &encode_images(1, 1, 4, &[1, 2, 3, 4]), "l", &encode_labels(&[1]), 2).unwrap();
    let m = data_error(RawData::new("mixed", 2, train, test));
    assert!(m.contains("2×2") && m.contains("1×4"), "{m}");
}
