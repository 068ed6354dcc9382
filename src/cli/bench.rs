//! `frr-composer bench-render`: compose + render time and peak memory on generated input.

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::api::{self, FRRConfiguration};
use crate::core::{self, Settings, Snapshot};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Each configuration advertises its own prefixes to 5 of the neighbors (many actors).
    Spread,
    /// Each configuration advertises its prefixes to every neighbor (MetalLB announcing every
    /// service to every peer): neighbors x prefixes advertisement entries.
    Full,
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 200)]
    pub configs: usize,
    #[arg(long, default_value_t = 100)]
    pub neighbors: usize,
    /// Total prefixes; with several comma-separated values each size runs in its own process,
    /// so that peak memory is per size.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub prefixes: Vec<usize>,
    #[arg(long, value_enum, default_value_t = Shape::Spread)]
    pub shape: Shape,
    #[arg(long, default_value_t = 11)]
    pub iterations: usize,
}

/// Generated input: `configs` FRRConfigurations for one router (AS 64512) sharing `neighbors`
/// neighbors; configuration i originates its slice of the prefixes (/32s from 198.18.0.0/15) and
/// advertises it as `shape` says; every neighbor also accepts 10.0.0.0/8 le 24.
pub fn generate(configs: usize, neighbors: usize, prefixes: usize, shape: Shape) -> Vec<FRRConfiguration> {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let neighbor_addr = |j: usize| Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + j as u32).to_string();
    (0..configs)
        .map(|i| {
            let lo = prefixes * i / configs;
            let hi = prefixes * (i + 1) / configs;
            let mine: Vec<String> = (lo..hi).map(|k| format!("{}/32", Ipv4Addr::from(base + k as u32))).collect();
            let targets: Vec<usize> = match shape {
                Shape::Full => (0..neighbors).collect(),
                Shape::Spread => (0..5.min(neighbors)).map(|k| (i * 5 + k) % neighbors).collect(),
            };
            let neighbors = targets
                .into_iter()
                .map(|j| api::Neighbor {
                    asn: 64600 + j as u32,
                    address: Some(neighbor_addr(j)),
                    to_advertise: api::Advertise {
                        allowed: api::AllowedOutPrefixes { prefixes: mine.clone(), mode: api::AllowMode::Filtered },
                        ..Default::default()
                    },
                    to_receive: api::Receive {
                        allowed: api::AllowedInPrefixes {
                            prefixes: vec![api::PrefixSelector { prefix: "10.0.0.0/8".into(), le: 24, ge: 0 }],
                            mode: api::AllowMode::Filtered,
                        },
                    },
                    ..Default::default()
                })
                .collect();
            let mut c = FRRConfiguration::new(
                &format!("bench-{i:04}"),
                api::FRRConfigurationSpec {
                    bgp: api::BgpConfig { routers: vec![api::Router { asn: 64512, neighbors, prefixes: mine, ..Default::default() }], bfd_profiles: vec![] },
                    ..Default::default()
                },
            );
            c.metadata.namespace = Some("bench".into());
            c
        })
        .collect()
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident set size of this process, in KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

pub fn run(args: &BenchArgs, out: &mut dyn Write) -> i32 {
    if args.prefixes.len() > 1 {
        let Ok(exe) = std::env::current_exe() else { return 2 };
        for p in &args.prefixes {
            let status = std::process::Command::new(&exe)
                .args(["bench-render", "--configs", &args.configs.to_string(), "--neighbors", &args.neighbors.to_string()])
                .args(["--prefixes", &p.to_string(), "--iterations", &args.iterations.to_string()])
                .args(["--shape", if args.shape == Shape::Full { "full" } else { "spread" }])
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                return 2;
            }
        }
        return 0;
    }
    let prefixes = args.prefixes[0];
    let configs = generate(args.configs, args.neighbors, prefixes, args.shape);
    let input_rss = status_kib("VmRSS:");
    let settings = Settings {
        namespace: "bench".into(),
        hostname: "bench-node".into(),
        log_level: api::LogLevel::Info,
        always_block: vec![],
        node_has_ipv4: true,
        frr_version: None,
    };
    let labels = Default::default();
    let secrets = Default::default();
    let mut times = Vec::new();
    let mut phases = Vec::new();
    let mut size = 0;
    for _ in 0..args.iterations.max(1) {
        let start = Instant::now();
        let composed = match core::compose(&settings, Snapshot { node_labels: &labels, configs: &configs, secrets: &secrets }) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(out, "generated input did not compose: {e}");
                return 2;
            }
        };
        let composed_at = start.elapsed();
        let plan = crate::render::plan(&composed.model);
        let planned_at = start.elapsed();
        let text = match crate::render::render_plan(&plan) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "{e}");
                return 2;
            }
        };
        times.push(start.elapsed());
        phases.push((composed_at, planned_at - composed_at, start.elapsed() - planned_at));
        size = text.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    phases.sort();
    let (c, p, t) = phases[phases.len() / 2];
    let _ = writeln!(
        out,
        "bench-render shape={:?} configs={} neighbors={} prefixes={}: median {:.1} ms (min {:.1}, max {:.1}, {} runs; compose {:.1} + plan {:.1} + template {:.1} ms), frr.conf {} KiB, peak RSS {} KiB (the generated input alone: {} KiB)",
        args.shape,
        args.configs,
        args.neighbors,
        prefixes,
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len(),
        c.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e3,
        size / 1024,
        peak_rss_kib().map(|k| k.to_string()).unwrap_or_else(|| "?".into()),
        input_rss.map(|k| k.to_string()).unwrap_or_else(|| "?".into()),
    );
    0
}
