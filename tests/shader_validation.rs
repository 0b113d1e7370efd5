//! Every kernel's composed WGSL (its file under `shaders/` followed by the `shaders/common/` files it
//! lists, exactly the text the GPU compiles: `sgd_lab::backend::gpu::shaders::KERNELS`) parses and
//! validates with naga (no GPU needed). The directories are listed at run time, so a new shader or common
//! file that the table forgets fails here.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::Path;

use sgd_lab::backend::gpu::shaders::KERNELS;

fn validate(src: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
    v.validate(&module).map_err(|e| e.emit_to_string(src))?;
    if !module.entry_points.iter().any(|e| e.name == "main") {
        return Err("no entry point named `main` (the GPU backend looks for it)".into());
    }
    Ok(())
}

/// The `.wgsl` file names directly in `dir` (relative to the crate root).
fn wgsl_files(dir: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_name().expect("a file name").to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_kernel_parses_and_validates_with_naga_with_its_common_declarations() {
    let failures: Vec<String> = KERNELS
        .iter()
        .filter_map(|k| validate(k.source).err().map(|e| format!("shaders/{} + common {:?}:\n{e}", k.file, k.common)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_shader_file_is_a_kernel_of_the_table() {
    let in_table: BTreeSet<String> = KERNELS.iter().map(|k| k.file.to_string()).collect();
    assert_eq!(wgsl_files("shaders"), in_table, "shaders/*.wgsl and gpu::shaders::KERNELS should name the same files");
}

#[test]
fn every_common_file_is_used_by_some_kernel() {
    let used: BTreeSet<String> = KERNELS.iter().flat_map(|k| k.common.iter().map(|c| c.to_string())).collect();
    assert_eq!(wgsl_files("shaders/common"), used, "shaders/common/*.wgsl and the common files the kernels list should agree");
}

#[test]
fn the_composed_source_is_the_kernel_file_then_its_common_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for k in KERNELS {
        let mut want = std::fs::read_to_string(root.join(k.file)).unwrap();
        for c in k.common {
            want.push('\n');
            want += &std::fs::read_to_string(root.join("common").join(c)).unwrap();
        }
        assert!(k.source == want, "{}: the compiled source is not shaders/{} + {:?}", k.file, k.file, k.common);
    }
}

#[test]
fn a_broken_shader_is_reported() {
    // The validator above must be able to fail: an undefined identifier is caught, and so is a kernel
    // whose common declarations are missing (StepSlot undefined).
    assert!(validate("@compute @workgroup_size(1) fn main() { let x = nope; }").is_err());
    let gather = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/gather.wgsl")).unwrap();
    assert!(validate(&gather).is_err(), "gather.wgsl alone should lack its common declarations");
}
