//! The device context: adapter, device, queue and the compiled kernels, built once and shared.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::shaders::{self, Bind, KernelSpec};
use crate::error::{LabError, Result};

/// One compute pipeline and its bind-group layout.
#[derive(Clone, Debug)]
pub(crate) struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub binds: &'static [Bind],
}

/// Every kernel of the lab, compiled once per context (sources and bindings: [`shaders`]).
#[derive(Clone, Debug)]
pub(crate) struct Kernels {
    pub gather: Kernel,
    pub gemm: Kernel,
    pub softmax: Kernel,
    pub bias: Kernel,
    pub sgd: Kernel,
    pub r_softmax: Kernel,
    pub perturb: Kernel,
}

/// A wgpu instance, adapter, device and queue with the lab's kernels compiled: create it once
/// and pass `&GpuContext` to everything that touches the GPU. Cloning is cheap (handles are shared).
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    info: wgpu::AdapterInfo,
    /// Work counted since the context was made (shared by every backend on it; see [`GpuCounters`]).
    pub(crate) counters: Arc<Counters>,
    /// The first error the device reported outside an error scope (in a browser: its `uncapturederror`
    /// event). A failed submit leaves the buffers as they were, so every later readback refuses to return
    /// numbers ([`GpuContext::read_back`]) instead of handing back stale ones. Natively wgpu's own handler
    /// (a panic) is kept.
    uncaptured: Arc<std::sync::Mutex<Option<String>>>,
    // Kept so the adapter (and on some platforms the instance) outlives the device.
    _adapter: wgpu::Adapter,
    _instance: wgpu::Instance,
}

/// The context's running totals: one relaxed atomic add per recorded dispatch and per readback.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    dispatches: AtomicU64,
    readbacks: AtomicU64,
}

/// Totals of GPU work since a [`GpuContext`] was made, over every backend that uses it.
/// Counted where the work is recorded, so a difference of two snapshots is exact for the calls between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuCounters {
    /// Compute dispatches recorded (every kernel launch of every backend operation).
    pub dispatches: u64,
    /// Readbacks (each a GPU→CPU copy that the CPU waits for; [`GpuContext`]'s only way data comes back).
    pub readbacks: u64,
}

impl std::ops::Sub for GpuCounters {
    type Output = GpuCounters;
    fn sub(self, rhs: GpuCounters) -> GpuCounters {
        GpuCounters { dispatches: self.dispatches - rhs.dispatches, readbacks: self.readbacks - rhs.readbacks }
    }
}

/// The error for "no adapter": short in a browser (the page shows it), with wgpu's details natively.
fn no_adapter(e: wgpu::RequestAdapterError) -> LabError {
    if cfg!(target_arch = "wasm32") {
        LabError::Gpu("no WebGPU adapter: this browser has no WebGPU, or it is turned off (chrome://flags, or --enable-unsafe-webgpu)".into())
    } else {
        LabError::Gpu(format!(
            "no GPU adapter found ({e}); install a Vulkan/Metal/DX12 driver (e.g. mesa-vulkan-drivers for the lavapipe software GPU), \
             or use the CPU backend"
        ))
    }
}

impl GpuContext {
    /// Requests an adapter and a device with WebGPU's **default limits** (the lab's portability
    /// contract: what runs here runs in any WebGPU browser), then compiles every kernel inside an
    /// error scope so that a WGSL or layout error names its file.
    pub async fn new() -> Result<GpuContext> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(no_adapter)?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sgd-lab"),
                // Timestamp queries only where offered: the throughput probes (`throughput.rs`) time with
                // them; nothing else uses them, so the portability contract is unchanged.
                required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
                required_limits: wgpu::Limits::default(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| {
                LabError::Gpu(format!(
                    "adapter '{}' cannot provide WebGPU's default limits ({e}); the lab needs them (8 storage buffers per stage, \
                     256 invocations per workgroup, 16 KiB workgroup memory); use the CPU backend",
                    info.name
                ))
            })?;
        let kernels = Kernels {
            gather: build_kernel(&device, &shaders::GATHER).await?,
            gemm: build_kernel(&device, &shaders::GEMM).await?,
            softmax: build_kernel(&device, &shaders::SOFTMAX_CE).await?,
            bias: build_kernel(&device, &shaders::BIAS_GRAD).await?,
            sgd: build_kernel(&device, &shaders::SGD).await?,
            r_softmax: build_kernel(&device, &shaders::R_SOFTMAX).await?,
            perturb: build_kernel(&device, &shaders::PERTURB).await?,
        };
        let uncaptured: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        #[cfg(target_arch = "wasm32")]
        {
            let slot = uncaptured.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut first = slot.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }));
        }
        Ok(GpuContext { device, queue, kernels, info, counters: Arc::default(), uncaptured, _adapter: adapter, _instance: instance })
    }

    /// The adapter's name, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// Adapter name and graphics API, e.g. `"GPU: llvmpipe (Vulkan)"`. Browsers often hide the
    /// adapter's name (Chromium leaves `GPUAdapterInfo.description` empty); then the driver fields are used.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let name = [&i.name, &i.driver, &i.driver_info].into_iter().find(|s| !s.trim().is_empty()).map_or("unnamed adapter", |s| s.as_str());
        let api = if i.backend == wgpu::Backend::BrowserWebGpu { "WebGPU".to_string() } else { format!("{:?}", i.backend) };
        format!("GPU: {name} ({api})")
    }

    /// Dispatches recorded and readbacks made so far on this context (all its backends together).
    pub fn counters(&self) -> GpuCounters {
        GpuCounters { dispatches: self.counters.dispatches.load(Ordering::Relaxed), readbacks: self.counters.readbacks.load(Ordering::Relaxed) }
    }

    /// The adapter's driver and driver details, e.g. `"llvmpipe: Mesa 22.3.6 (LLVM 15.0.6)"` (may be empty in browsers).
    pub fn driver(&self) -> String {
        format!("{}: {}", self.info.driver, self.info.driver_info)
    }

    /// The limits the device was created with (WebGPU's defaults).
    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// A storage buffer of `bytes` bytes (at least 4) usable as a copy source and destination.
    pub(crate) fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer holding `contents` (padded to at least 4 bytes).
    pub(crate) fn storage_init(&self, label: &str, contents: &[u8]) -> wgpu::Buffer {
        let b = self.storage(label, contents.len() as u64);
        if !contents.is_empty() {
            self.queue.write_buffer(&b, 0, contents);
        }
        b
    }

    /// A uniform buffer of `bytes` bytes, written with `queue.write_buffer`.
    pub(crate) fn uniform(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Builds a bind group for `kernel` from one buffer range per binding, in binding order.
    /// `ranges[i] = (buffer, offset, size)`; `size = None` binds to the end of the buffer.
    pub(crate) fn bind_group(&self, label: &str, kernel: &Kernel, ranges: &[(&wgpu::Buffer, u64, Option<u64>)]) -> wgpu::BindGroup {
        assert_eq!(ranges.len(), kernel.binds.len(), "{label}: one buffer per binding");
        let entries: Vec<wgpu::BindGroupEntry> = ranges
            .iter()
            .enumerate()
            .map(|(i, &(buffer, offset, size))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size: size.and_then(wgpu::BufferSize::new) }),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout: &kernel.layout, entries: &entries })
    }

    /// Copies the given `(buffer, offset, bytes)` ranges into one staging buffer, submits, waits for the
    /// mapping (polling the device natively, awaiting the browser on wasm) and returns each range's bytes.
    /// This is the only way results leave the GPU: one call is one readback.
    pub(crate) async fn read_back(&self, parts: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<Vec<u8>>> {
        self.counters.readbacks.fetch_add(1, Ordering::Relaxed);
        self.check_uncaptured()?;
        let total: u64 = parts.iter().map(|p| p.2.next_multiple_of(4)).sum();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let mut at = 0;
        for &(buf, off, size) in parts {
            if size > 0 {
                enc.copy_buffer_to_buffer(buf, off, &staging, at, size.next_multiple_of(4));
            }
            at += size.next_multiple_of(4);
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| LabError::Gpu(format!("waiting for the GPU failed: {e}")))?;
        rx.await
            .map_err(|_| LabError::Gpu("the GPU dropped a readback (device lost?)".into()))?
            .map_err(|e| LabError::Gpu(format!("mapping a readback buffer failed: {e}")))?;
        self.check_uncaptured()?;
        let out = {
            let view = staging.slice(..).get_mapped_range().map_err(|e| LabError::Gpu(format!("reading a mapped buffer failed: {e}")))?;
            let mut out = Vec::with_capacity(parts.len());
            let mut at = 0usize;
            for &(_, _, size) in parts {
                out.push(view[at..at + size as usize].to_vec());
                at += size.next_multiple_of(4) as usize;
            }
            out
        };
        staging.unmap();
        Ok(out)
    }
}

impl GpuContext {
    /// Fails if the device reported an error outside an error scope since it was made (see `uncaptured`).
    fn check_uncaptured(&self) -> Result<()> {
        match &*self.uncaptured.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(LabError::Gpu(format!("the GPU reported an error, so its results cannot be trusted: {e}"))),
            None => Ok(()),
        }
    }
}

/// Compiles `spec`'s composed source and builds its bind-group layout and pipeline inside an error scope,
/// so that a WGSL or binding error names the kernel's file.
pub(crate) async fn build_kernel(device: &wgpu::Device, spec: &KernelSpec) -> Result<Kernel> {
    let (file, binds) = (spec.file, spec.binds);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(spec.source.into()) });
    let entries: Vec<wgpu::BindGroupLayoutEntry> = binds
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b {
                    Bind::Uniform(_) | Bind::UniformDyn(_) => wgpu::BufferBindingType::Uniform,
                    Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Bind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: matches!(b, Bind::UniformDyn(_)),
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(file), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(file),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(file),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    if let Some(e) = scope.pop().await {
        return Err(LabError::Gpu(format!("shaders/{file} failed to compile or does not match its bindings: {e}")));
    }
    Ok(Kernel { pipeline, layout, binds })
}

/// Records dispatches of the lab's kernels into a compute pass, counting them (here, and on drop into the
/// context's [`GpuCounters`]).
pub(crate) struct Recorder<'p> {
    pub pass: wgpu::ComputePass<'p>,
    pub dispatches: usize,
    counters: Arc<Counters>,
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.counters.dispatches.fetch_add(self.dispatches as u64, Ordering::Relaxed);
    }
}

impl<'p> Recorder<'p> {
    /// A recorder into `pass` that adds its dispatches to `ctx`'s counters.
    pub fn new(pass: wgpu::ComputePass<'p>, ctx: &GpuContext) -> Self {
        Recorder { pass, dispatches: 0, counters: ctx.counters.clone() }
    }

    /// Dispatches `kernel` with `bg` over an explicit grid.
    pub fn grid(&mut self, kernel: &Kernel, bg: &wgpu::BindGroup, offsets: &[u32], grid: [u32; 3]) {
        self.pass.set_pipeline(&kernel.pipeline);
        self.pass.set_bind_group(0, bg, offsets);
        self.pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        self.dispatches += 1;
    }

    /// Dispatches one thread per item (`items` threads in workgroups of 256), flattened over x and y
    /// because a grid dimension is limited to 65535 workgroups. The kernel rebuilds the index as
    /// `(wg.y * num_workgroups.x + wg.x) * 256 + local_index` and skips indices ≥ items.
    pub fn flat(&mut self, kernel: &Kernel, bg: &wgpu::BindGroup, offsets: &[u32], items: usize) {
        self.grid(kernel, bg, offsets, flat_grid(items));
    }
}

/// The `(x, y, 1)` grid covering `items` threads in workgroups of 256.
pub(crate) fn flat_grid(items: usize) -> [u32; 3] {
    let groups = items.div_ceil(256).max(1);
    let x = groups.min(65535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}
