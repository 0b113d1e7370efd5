//! Every WGSL file under `shaders/` parses and validates with naga (no GPU needed).
//! The directory is listed at run time, so a new shader is covered without touching this file.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

fn validate(path: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string(&src))?;
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
    v.validate(&module).map_err(|e| e.emit_to_string(&src))?;
    if !module.entry_points.iter().any(|e| e.name == "main") {
        return Err("no entry point named `main` (the GPU backend looks for it)".into());
    }
    Ok(())
}

#[test]
fn every_shader_parses_and_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the kernel files in {}, found {files:?}", dir.display());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| validate(p).err().map(|e| format!("{}:\n{e}", p.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_broken_shader_is_reported() {
    // The validator above must be able to fail: an undefined identifier is caught.
    let dir = std::env::temp_dir().join(format!("sgd-lab-naga-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("broken.wgsl");
    std::fs::write(&p, "@compute @workgroup_size(1) fn main() { let x = nope; }").unwrap();
    assert!(validate(&p).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
