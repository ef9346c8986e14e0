//! The GPU device: adapter choice, the features and limits hearth asks for, the device's
//! faults, and blocking helpers for native code.

use std::sync::{Arc, Mutex};

use crate::{Error, Result};

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    faults: Arc<Faults>,
}

/// What went wrong on the device since it was last checked: wgpu reports validation and
/// out-of-memory errors to a handler (whose default panics natively) and a lost device to a
/// callback; both are recorded here and turned into errors by [`GpuContext::check`].
#[derive(Default)]
struct Faults {
    error: Mutex<Option<String>>,
    lost: Mutex<Option<String>>,
}

impl Faults {
    fn note(slot: &Mutex<Option<String>>, what: String) {
        if let Ok(mut s) = slot.lock() {
            s.get_or_insert(what);
        }
    }
}

impl GpuContext {
    /// The first high-performance adapter, or an error saying why there is none.
    pub async fn new_async() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no adapter: {e}")))?;
        let info = adapter.get_info();
        // Ask for what the adapter really offers: storage binding size and buffer size
        // decide how weights are split.
        let have = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..wgpu::Limits::default()
        };
        // Timestamps serve `hearth bench --profile`; nothing else depends on them.
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("hearth"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("device request failed: {e}")))?;
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| Faults::note(&f.error, one_line(&e.to_string()))));
        let f = faults.clone();
        device.set_device_lost_callback(move |reason, message| Faults::note(&f.lost, format!("{reason:?}: {}", one_line(&message))));
        Ok(Self { device, queue, info, limits, faults })
    }

    /// The first fault since the last check, as an error: [`Error::GpuLost`] once the device
    /// is lost (for good: later checks keep saying so), else a validation or out-of-memory
    /// error [`Error::Gpu`] (reported once).
    pub fn check(&self) -> Result<()> {
        if let Some(why) = self.faults.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(Error::GpuLost(why));
        }
        match self.faults.error.lock().ok().and_then(|mut s| s.take()) {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// `err`, unless the device has a fault that explains it better (a failed readback on a
    /// lost device is the lost device).
    pub fn fault_or(&self, err: Error) -> Error {
        self.check().err().unwrap_or(err)
    }

    /// Native only: creates the context, blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// A software rasteriser (lavapipe, SwiftShader): correct, but slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn describe(&self) -> String {
        format!("gpu: {} ({:?})", self.info.name, self.info.backend)
    }

    /// Destroys the device, as a browser may at any time (tests of lost-device handling).
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Largest storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }
}

/// wgpu's multi-line error reports as one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
