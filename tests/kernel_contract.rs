//! Each kernel's contract with the Rust side, read from its WGSL with naga's reflection (no GPU needed).
//!
//! A kernel has three sources of truth that no compiler ties together: its WGSL `@binding` declarations,
//! the `Bind` kinds its bind-group layout is built with, and the `#[repr(C)]` structs the backend writes
//! into its uniforms. `sgd_lab::backend::gpu::shaders::KERNELS` states the last two beside the composed
//! source; here every entry is checked against what the WGSL declares.
#![cfg(not(target_arch = "wasm32"))]

use naga::{AddressSpace, StorageAccess};
use sgd_lab::backend::gpu::shaders::{Bind, KernelSpec, GEMM, KERNELS};

/// What the WGSL declares at one `@group(g) @binding(b)`.
#[derive(Debug)]
struct Declared {
    group: u32,
    binding: u32,
    name: String,
    space: AddressSpace,
    /// Size in bytes of the variable's type (naga's layouter: WGSL's size and alignment rules).
    bytes: u32,
}

/// The resource variables of `spec`'s composed source, in binding order.
fn declared(spec: &KernelSpec) -> Vec<Declared> {
    let module = naga::front::wgsl::parse_str(spec.source).unwrap_or_else(|e| panic!("{}: {}", spec.file, e.emit_to_string(spec.source)));
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap_or_else(|e| panic!("{}: no layout: {e}", spec.file));
    let mut out: Vec<Declared> = module
        .global_variables
        .iter()
        .filter_map(|(_, v)| {
            let rb = v.binding.as_ref()?;
            Some(Declared {
                group: rb.group,
                binding: rb.binding,
                name: v.name.clone().unwrap_or_default(),
                space: v.space,
                bytes: layouter[v.ty].size,
            })
        })
        .collect();
    out.sort_by_key(|d| (d.group, d.binding));
    out
}

/// Sentences naming every binding of `spec` that is not `0..n` in group 0 with n = its `Bind` count.
fn numbering_violations(spec: &KernelSpec) -> Vec<String> {
    let found = declared(spec);
    let mut out = Vec::new();
    for d in found.iter().filter(|d| d.group != 0) {
        out.push(format!("{}: `{}` is in group {}, the backend binds group 0 only", spec.file, d.name, d.group));
    }
    let numbers: Vec<u32> = found.iter().filter(|d| d.group == 0).map(|d| d.binding).collect();
    let want: Vec<u32> = (0..spec.binds.len() as u32).collect();
    if numbers != want {
        out.push(format!("{}: the WGSL declares bindings {numbers:?} in group 0, the Rust table {want:?}", spec.file));
    }
    out
}

/// Whether the WGSL address space is the one a `Bind` kind builds its layout entry for.
fn kind_agrees(bind: Bind, space: AddressSpace) -> bool {
    match (bind, space) {
        (Bind::Uniform(_) | Bind::UniformDyn(_), AddressSpace::Uniform) => true,
        (Bind::Read, AddressSpace::Storage { access }) => access == StorageAccess::LOAD,
        (Bind::ReadWrite, AddressSpace::Storage { access }) => access.contains(StorageAccess::LOAD | StorageAccess::STORE),
        _ => false,
    }
}

/// Sentences naming every binding whose WGSL address space and access disagree with the Rust `Bind`.
fn kind_violations(spec: &KernelSpec) -> Vec<String> {
    declared(spec)
        .iter()
        .filter(|d| d.group == 0)
        .filter_map(|d| {
            let bind = spec.binds.get(d.binding as usize)?;
            (!kind_agrees(*bind, d.space))
                .then(|| format!("{}: binding {} (`{}`) is declared {:?} in WGSL but bound as {bind:?} in Rust", spec.file, d.binding, d.name, d.space))
        })
        .collect()
}

/// Sentences naming every uniform whose WGSL struct size differs from the Rust struct written into it.
fn size_violations(spec: &KernelSpec) -> Vec<String> {
    declared(spec)
        .iter()
        .filter(|d| d.group == 0 && d.space == AddressSpace::Uniform)
        .filter_map(|d| {
            let rust = spec.binds.get(d.binding as usize)?.uniform_bytes()?;
            (rust != d.bytes as usize).then(|| {
                format!("{}: uniform binding {} (`{}`) is {} bytes in WGSL, the Rust struct written there {rust}", spec.file, d.binding, d.name, d.bytes)
            })
        })
        .collect()
}

fn all(check: fn(&KernelSpec) -> Vec<String>) -> Vec<String> {
    KERNELS.iter().flat_map(check).collect()
}

#[test]
fn every_kernel_declares_its_bindings_0_to_n_in_group_0() {
    let failures = all(numbering_violations);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_binding_is_declared_with_the_kind_the_rust_table_binds_it_as() {
    let failures = all(kind_violations);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_uniform_has_the_size_of_the_rust_struct_written_into_it() {
    let failures = all(size_violations);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_kernel_has_a_uniform_at_binding_0_and_at_most_one_dynamic_slot() {
    for k in KERNELS {
        assert!(matches!(k.binds.first(), Some(Bind::Uniform(_))), "{}: binding 0 should be its parameters' uniform", k.file);
        let dynamic = k.binds.iter().filter(|b| matches!(b, Bind::UniformDyn(_))).count();
        assert!(dynamic <= 1, "{}: {dynamic} dynamic-offset uniforms (the recorders pass one offset)", k.file);
    }
}

/// GEMM's entry with its bindings replaced (`binds` must be `'static`, as in the real table).
fn gemm_bound_as(binds: &'static [Bind]) -> KernelSpec {
    KernelSpec { binds, ..GEMM }
}

#[test]
fn the_checks_catch_a_wrong_kind_a_missing_binding_and_a_wrong_uniform_size() {
    use Bind::*;
    let gemm_params = GEMM.binds[0].uniform_bytes().expect("GEMM's binding 0 is a uniform");
    assert!(numbering_violations(&GEMM).is_empty() && kind_violations(&GEMM).is_empty() && size_violations(&GEMM).is_empty());

    // `params` (binding 1) is var<storage, read>: binding it read-write is caught, and so is the reverse.
    let wrong_kind = gemm_bound_as(&[Uniform(96), ReadWrite, ReadWrite, ReadWrite]);
    assert_eq!(kind_violations(&wrong_kind).len(), 1, "{:?}", kind_violations(&wrong_kind));
    let wrong_kind = gemm_bound_as(&[Uniform(96), Read, Read, ReadWrite]);
    assert_eq!(kind_violations(&wrong_kind).len(), 1);
    let storage_as_uniform = gemm_bound_as(&[Uniform(96), Uniform(96), ReadWrite, ReadWrite]);
    assert_eq!(kind_violations(&storage_as_uniform).len(), 1);

    let missing = gemm_bound_as(&[Uniform(96), Read, ReadWrite]);
    assert_eq!(numbering_violations(&missing).len(), 1);
    let extra = gemm_bound_as(&[Uniform(96), Read, ReadWrite, ReadWrite, Read]);
    assert_eq!(numbering_violations(&extra).len(), 1);

    assert_eq!(gemm_params, 96, "GemmParams is 24 words");
    let wrong_size = gemm_bound_as(&[Uniform(92), Read, ReadWrite, ReadWrite]);
    assert_eq!(size_violations(&wrong_size).len(), 1);
}

#[test]
fn the_numbering_check_catches_a_gap_and_another_group() {
    let spec = KernelSpec {
        file: "made-up.wgsl",
        common: &[],
        source: "@group(0) @binding(0) var<uniform> u: vec4<u32>;\n\
                 @group(0) @binding(2) var<storage, read_write> a: array<f32>;\n\
                 @group(1) @binding(1) var<storage, read> b: array<f32>;\n\
                 @compute @workgroup_size(1) fn main() { a[0] = b[0] + f32(u.x); }",
        binds: &[Bind::Uniform(16), Bind::ReadWrite],
    };
    let found = numbering_violations(&spec);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("group 1") && found[1].contains("[0, 2]"), "{found:?}");
}
