//! Admission decision cost with 1,000 FRRConfigurations and 100 Nodes: p50/p99 of the webhook's
//! validation (the same function the HTTPS handler calls) for new objects that select a rack of
//! 10 nodes, each node merging about 100 existing configurations.
//!
//!   cargo bench --bench webhook

use std::collections::BTreeMap;
use std::time::Instant;

use frr_composer::api::*;
use frr_composer::webhook::validate::validate;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn config(i: usize, rack: usize) -> FRRConfiguration {
    let neighbor = |j: usize| Neighbor {
        asn: 64600 + j as u32,
        address: Some(format!("192.0.2.{}", 1 + j)),
        to_advertise: Advertise {
            allowed: AllowedOutPrefixes { prefixes: vec![format!("198.51.{}.{}/32", i / 256, i % 256)], mode: AllowMode::Filtered },
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = FRRConfiguration::new(
        &format!("cfg-{i:04}"),
        FRRConfigurationSpec {
            bgp: BgpConfig {
                routers: vec![Router {
                    asn: 64512,
                    neighbors: (0..1 + i % 3).map(neighbor).collect(),
                    prefixes: vec![format!("198.51.{}.{}/32", i / 256, i % 256)],
                    ..Default::default()
                }],
                bfd_profiles: vec![],
            },
            node_selector: Some(LabelSelector { match_labels: Some([("rack".to_string(), format!("rack{rack}"))].into()), ..Default::default() }),
            ..Default::default()
        },
    );
    c.metadata.namespace = Some("frr-k8s-system".into());
    c
}

fn main() {
    let nodes: BTreeMap<String, BTreeMap<String, String>> = (0..100)
        .map(|n| {
            (format!("node-{n:03}"), [("rack".to_string(), format!("rack{}", n % 10)), ("kubernetes.io/hostname".to_string(), format!("node-{n:03}"))].into())
        })
        .collect();
    let existing: Vec<FRRConfiguration> = (0..1000).map(|i| config(i, i % 10)).collect();
    let mut times = Vec::new();
    for k in 0..200 {
        let new = config(1000 + k, k % 10);
        let others: Vec<FRRConfiguration> = existing.iter().filter(|c| c.metadata.name != new.metadata.name).cloned().collect();
        let start = Instant::now();
        let r = validate("frr-k8s-system", &new, None, &others, &nodes);
        times.push(start.elapsed());
        assert!(r.is_ok(), "{r:?}");
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "webhook validation, 1,000 FRRConfigurations, 100 Nodes, new object selecting 10 nodes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs)",
        pct(0.5),
        pct(0.99),
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}
