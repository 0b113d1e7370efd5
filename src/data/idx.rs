//! The IDX format of MNIST and Fashion-MNIST, plain or gzipped, read from bytes (no file I/O here, so
//! the page can hand over what it fetched).
//!
//! An IDX file is a big-endian header — magic `0x0000TTDD` (`TT` = element type, `08` = unsigned byte;
//! `DD` = number of dimensions), then one u32 size per dimension — followed by the elements, row-major.
//! The lab reads two kinds: images (`0x00000803`: count × rows × cols bytes) and labels (`0x00000801`:
//! count bytes). Every check happens before anything is allocated from a header's numbers: the declared
//! size is compared with the bytes actually present, so a hostile header cannot ask for gigabytes, and
//! a gzip stream is decompressed with a hard cap ([`MAX_DECOMPRESSED_BYTES`]).
//! Errors are [`LabError::Data`] and name the file, what is wrong and the byte offset.

use std::io::Read;

use crate::error::{LabError, Result};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Largest decompressed file accepted (256 MiB; Fashion-MNIST's training images are 47 MB).
pub const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// Images read from an IDX file: `n` images of `rows × cols` bytes, row-major, one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n × rows × cols` pixel bytes.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Bytes (features) per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.dim();
        &self.pixels[i * d..(i + 1) * d]
    }
}

/// True when `bytes` start with the gzip magic (`1f 8b`).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Decompresses a gzip stream (`file` names it in errors), refusing more than `max` decompressed bytes.
pub fn gunzip(file: &str, bytes: &[u8], max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(bytes).take(max as u64 + 1);
    if let Err(e) = decoder.read_to_end(&mut out) {
        // The decoder reads its input through a buffer, so the offset is where it had read up to.
        let read = bytes.len() - decoder.get_ref().get_ref().len();
        return Err(LabError::Data(format!(
            "{file}: the gzip stream is corrupt or truncated ({e}): the decoder had read up to compressed byte offset {read} of {} and produced {} decompressed bytes; fetch the file again (scripts/fetch-data --force)",
            bytes.len(),
            out.len()
        )));
    }
    if out.len() > max {
        return Err(LabError::Data(format!(
            "{file}: decompresses to more than {max} bytes (stopped at decompressed byte offset {max}), more than any data set the lab accepts"
        )));
    }
    Ok(out)
}

/// The file's bytes, decompressed when they are gzipped (what the lab's SHA-256 pins are of).
pub fn decompress(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    contents(file, bytes)
}

/// The file's bytes, decompressed when they are gzipped.
fn contents(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if is_gzip(bytes) {
        gunzip(file, bytes, MAX_DECOMPRESSED_BYTES)
    } else {
        Ok(bytes.to_vec())
    }
}

fn be_u32(file: &str, bytes: &[u8], offset: usize, what: &str) -> Result<u32> {
    match bytes.get(offset..offset + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(LabError::Data(format!(
            "{file}: truncated header: {what} (byte offsets {offset}..{}) is missing, the file has only {} bytes",
            offset + 4,
            bytes.len()
        ))),
    }
}

fn check_magic(file: &str, bytes: &[u8], expected: u32, kind: &str) -> Result<()> {
    let magic = be_u32(file, bytes, 0, "the magic number")?;
    if magic != expected {
        let hint = if magic >> 16 != 0 {
            " (the first two bytes of an IDX file are zero: is this another format, or still compressed?)".to_string()
        } else if magic >> 8 != 0x08 {
            format!(" (element type 0x{:02X}; only unsigned bytes, 0x08, are read)", (magic >> 8) & 0xff)
        } else {
            format!(" ({} dimensions)", magic & 0xff)
        };
        return Err(LabError::Data(format!(
            "{file}: bad magic number 0x{magic:08X} at byte offset 0, expected 0x{expected:08X} for {kind}{hint}"
        )));
    }
    Ok(())
}

/// Checks that `bytes` hold exactly `header + body` bytes, where `body` comes from the header's sizes.
fn check_length(file: &str, bytes: &[u8], header: usize, body: u128, declared: &str) -> Result<usize> {
    let have = (bytes.len() - header) as u128;
    if body > have {
        return Err(LabError::Data(format!(
            "{file}: truncated: the header declares {declared} = {body} data bytes after the {header}-byte header, but the data end at byte offset {} ({have} data bytes)",
            bytes.len()
        )));
    }
    if body < have {
        return Err(LabError::Data(format!(
            "{file}: {} unexpected byte(s) after the data: the header declares {declared} = {body} data bytes, so the file should end at byte offset {}",
            have - body,
            header as u128 + body
        )));
    }
    Ok(body as usize)
}

/// Reads an IDX image file (`0x00000803`), plain or gzipped; `file` names it in errors.
pub fn parse_images(file: &str, bytes: &[u8]) -> Result<IdxImages> {
    let mut data = contents(file, bytes)?;
    check_magic(file, &data, IMAGES_MAGIC, "images")?;
    let n = be_u32(file, &data, 4, "the image count")?;
    let rows = be_u32(file, &data, 8, "the row count")?;
    let cols = be_u32(file, &data, 12, "the column count")?;
    if rows == 0 || cols == 0 {
        return Err(LabError::Data(format!("{file}: the header (byte offsets 8..16) declares images of {rows}×{cols} pixels; both sizes must be at least 1")));
    }
    // u128: the product of three u32 cannot overflow it, on wasm32 neither.
    let body = n as u128 * rows as u128 * cols as u128;
    check_length(file, &data, 16, body, &format!("{n} images × {rows} × {cols}"))?;
    data.drain(..16);
    Ok(IdxImages { n: n as usize, rows: rows as usize, cols: cols as usize, pixels: data })
}

/// Reads an IDX file of unsigned-byte examples with one to three dimensions each (magic `0x00000802`
/// `n × d`, `0x00000803` `n × rows × cols`, `0x00000804` `n × rows × cols × channels`), plain or gzipped:
/// data sets of your own. An example of `n × d` is read as 1 row of d, one of `rows × cols × channels` as
/// `rows` rows of `cols · channels` (features are the bytes in file order either way).
pub fn parse_examples(file: &str, bytes: &[u8]) -> Result<IdxImages> {
    let mut data = contents(file, bytes)?;
    let magic = be_u32(file, &data, 0, "the magic number")?;
    let dims = (magic & 0xff) as usize;
    if magic >> 8 != 0x08 || !(2..=4).contains(&dims) {
        let hint = if magic >> 16 != 0 { " (the first two bytes of an IDX file are zero: is this another format, or still compressed?)".to_string() } else { format!(" (element type 0x{:02X}, {dims} dimensions)", (magic >> 8) & 0xff) };
        return Err(LabError::Data(format!(
            "{file}: bad magic number 0x{magic:08X} at byte offset 0, expected unsigned-byte examples with 2 to 4 dimensions (0x00000802 to 0x00000804){hint}"
        )));
    }
    let mut sizes = Vec::with_capacity(dims);
    for d in 0..dims {
        sizes.push(be_u32(file, &data, 4 + 4 * d, &format!("size {d}"))? as u128);
    }
    let header = 4 + 4 * dims;
    if let Some(d) = sizes.iter().skip(1).position(|&s| s == 0) {
        return Err(LabError::Data(format!("{file}: the header (byte offset {}) declares a size of 0 for dimension {}; every size of an example must be at least 1", 8 + 4 * d, d + 1)));
    }
    let per: u128 = sizes[1..].iter().product();
    // At most three u32 per example: the product fits u128 with room; refuse what the lab cannot index.
    if per > u32::MAX as u128 {
        return Err(LabError::Data(format!("{file}: the header (byte offsets 8..{header}) declares examples of {per} bytes, more than the lab handles")));
    }
    let shape: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    check_length(file, &data, header, sizes[0] * per, &shape.join(" × "))?;
    data.drain(..header);
    let (rows, cols) = if dims == 2 { (1, sizes[1] as usize) } else { (sizes[1] as usize, (per / sizes[1]) as usize) };
    Ok(IdxImages { n: sizes[0] as usize, rows, cols, pixels: data })
}

/// Reads an IDX label file (`0x00000801`), plain or gzipped; `file` names it in errors.
pub fn parse_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut data = contents(file, bytes)?;
    check_magic(file, &data, LABELS_MAGIC, "labels")?;
    let n = be_u32(file, &data, 4, "the label count")?;
    check_length(file, &data, 8, n as u128, &format!("{n} labels"))?;
    data.drain(..8);
    Ok(data)
}

/// Images and their labels, checked to be as many and below `classes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledImages {
    /// The images.
    pub images: IdxImages,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl LabelledImages {
    /// Pairs images with labels; `what` (e.g. "fashion-mnist train") names the pair in errors.
    pub fn new(what: &str, images: IdxImages, labels: Vec<u8>, classes: usize) -> Result<Self> {
        if images.n != labels.len() {
            return Err(LabError::Data(format!(
                "{what}: {} images but {} labels; the image and label files must come from the same set",
                images.n,
                labels.len()
            )));
        }
        if let Some((i, &y)) = labels.iter().enumerate().find(|(_, &y)| y as usize >= classes) {
            return Err(LabError::Data(format!(
                "{what}: label {y} of example {i} (label file byte offset {}) is not below the class count {classes}",
                8 + i
            )));
        }
        Ok(LabelledImages { images, labels })
    }

    /// Reads and pairs an image file and a label file (plain or gzipped).
    pub fn parse(what: &str, images_file: &str, images: &[u8], labels_file: &str, labels: &[u8], classes: usize) -> Result<Self> {
        let images = parse_images(images_file, images)?;
        let labels = parse_labels(labels_file, labels)?;
        Self::new(what, images, labels, classes)
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Encodes images as an IDX file (uncompressed); the inverse of [`parse_images`], for tests and tools.
pub fn encode_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for w in [IMAGES_MAGIC, n, rows, cols] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels as an IDX file (uncompressed); the inverse of [`parse_labels`], for tests and tools.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
