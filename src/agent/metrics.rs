//! Prometheus metrics, with the anchor's names where MetalLB's dashboards use them
//! (frrk8s_bgp_*, frrk8s_bfd_*, frrk8s_k8s_client_*), plus the agent's own.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::frr::state::{BfdPeer, BgpNeighbor};

/// Latest BFD counters of one peer (`show bfd peers counters json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BfdCounters {
    pub vrf: String,
    pub peer: String,
    pub values: Vec<(&'static str, u64)>,
}

pub fn parse_bfd_counters(v: &serde_json::Value) -> Vec<BfdCounters> {
    const KEYS: [(&str, &str); 7] = [
        ("control-packet-input", "control_packet_input"),
        ("control-packet-output", "control_packet_output"),
        ("echo-packet-input", "echo_packet_input"),
        ("echo-packet-output", "echo_packet_output"),
        ("session-up", "session_up_events"),
        ("session-down", "session_down_events"),
        ("zebra-notifications", "zebra_notifications"),
    ];
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| BfdCounters {
                    vrf: p.get("vrf").and_then(|v| v.as_str()).unwrap_or("default").to_string(),
                    peer: p.get("peer").and_then(|v| v.as_str()).unwrap_or("").to_string(),
                    values: KEYS.iter().map(|(k, name)| (*name, p.get(*k).and_then(|v| v.as_u64()).unwrap_or(0))).collect(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What FRR last reported, exposed on each scrape.
#[derive(Debug, Default)]
pub struct FrrSnapshot {
    /// The running FRR's version (`show version`), once read.
    pub version: Option<String>,
    pub neighbors: Vec<BgpNeighbor>,
    pub bfd: Vec<BfdPeer>,
    pub bfd_counters: Vec<BfdCounters>,
}

#[derive(Debug, Clone, Default)]
pub struct FrrCollector(pub Arc<Mutex<FrrSnapshot>>);

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Vec<(String, String)>, i64)]) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let g = ConstGauge::new(0i64);
    let mut family = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for FrrCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().map_err(|_| std::fmt::Error)?;
        let labels = |peer: &str, vrf: &str| vec![("peer".to_string(), peer.to_string()), ("vrf".to_string(), vrf.to_string())];
        type Get = fn(&BgpNeighbor) -> u64;
        // FRR's own counters are exposed under the anchor's names, as gauges of FRR's values.
        let bgp: [(&str, &str, Get); 13] = [
            ("frrk8s_bgp_session_up", "BGP session state (1 is up, 0 is down)", |n| u64::from(n.state == "Established")),
            ("frrk8s_bgp_announced_prefixes_total", "Number of prefixes currently being advertised on the BGP session", |n| n.prefixes_sent),
            ("frrk8s_bgp_received_prefixes_total", "Number of prefixes currently being received on the BGP session", |n| n.prefixes_accepted),
            ("frrk8s_bgp_opens_sent", "Number of BGP open messages sent", |n| n.opens_sent),
            ("frrk8s_bgp_opens_received", "Number of BGP open messages received", |n| n.opens_received),
            ("frrk8s_bgp_notifications_sent", "Number of BGP notification messages sent", |n| n.notifications_sent),
            ("frrk8s_bgp_updates_total", "Number of BGP UPDATE messages sent", |n| n.updates_sent),
            ("frrk8s_bgp_updates_total_received", "Number of BGP UPDATE messages received", |n| n.updates_received),
            ("frrk8s_bgp_keepalives_sent", "Number of BGP keepalive messages sent", |n| n.keepalives_sent),
            ("frrk8s_bgp_keepalives_received", "Number of BGP keepalive messages received", |n| n.keepalives_received),
            ("frrk8s_bgp_route_refresh_sent", "Number of BGP route refresh messages sent", |n| n.route_refresh_sent),
            ("frrk8s_bgp_total_sent", "Number of total BGP messages sent", |n| n.messages_sent),
            ("frrk8s_bgp_total_received", "Number of total BGP messages received", |n| n.messages_received),
        ];
        for (name, help, get) in bgp {
            let rows: Vec<_> = s.neighbors.iter().map(|n| (labels(&n.peer, &n.vrf), get(n) as i64)).collect();
            gauge(&mut encoder, name, help, &rows)?;
        }
        let info: Vec<_> = s.version.iter().map(|v| (vec![("version".to_string(), v.clone())], 1)).collect();
        gauge(&mut encoder, "frr_composer_frr_info", "The running FRR's version (label version, from show version); always 1", &info)?;
        let up: Vec<_> = s.bfd.iter().map(|p| (labels(&p.peer, &p.vrf), i64::from(p.status == "up"))).collect();
        gauge(&mut encoder, "frrk8s_bfd_session_up", "BFD session state (1 is up, 0 is down)", &up)?;
        for key in [
            "control_packet_input",
            "control_packet_output",
            "echo_packet_input",
            "echo_packet_output",
            "session_up_events",
            "session_down_events",
            "zebra_notifications",
        ] {
            let rows: Vec<_> =
                s.bfd_counters.iter().filter_map(|c| c.values.iter().find(|(k, _)| *k == key).map(|(_, v)| (labels(&c.peer, &c.vrf), *v as i64))).collect();
            gauge(&mut encoder, &format!("frrk8s_bfd_{key}"), &format!("BFD {}", key.replace('_', " ")), &rows)?;
        }
        Ok(())
    }
}

/// The agent's metrics.
#[derive(Clone)]
pub struct Metrics {
    pub updates: Counter,
    pub update_errors: Counter,
    pub config_loaded: Gauge,
    pub config_stale: Gauge,
    pub apply_duration: Histogram,
    pub apply_errors: Counter,
    pub drift_repairs: Counter,
    /// FRRConfigurations whose current generation is refused while an earlier one stays in effect.
    pub objects_held: Gauge,
    /// FRRConfigurations whose current generation is refused and that have nothing in effect.
    pub objects_left_out: Gauge,
    pub applies: Counter,
    pub commands_sent: Counter,
    pub frr: FrrCollector,
    pub registry: Arc<Registry>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let updates = Counter::default();
        let update_errors = Counter::default();
        let config_loaded = Gauge::default();
        let config_stale = Gauge::default();
        let apply_duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let apply_errors = Counter::default();
        let drift_repairs = Counter::default();
        let applies = Counter::default();
        let commands_sent = Counter::default();
        r.register("frrk8s_k8s_client_updates", "Number of configuration updates (reconciles)", updates.clone());
        r.register("frrk8s_k8s_client_update_errors", "Number of failed configuration updates", update_errors.clone());
        r.register("frrk8s_k8s_client_config_loaded_bool", "1 once a configuration was applied", config_loaded.clone());
        r.register("frrk8s_k8s_client_config_stale_bool", "1 while the last conversion or apply failed", config_stale.clone());
        r.register("frr_composer_apply_duration_seconds", "Time to bring FRR to a new configuration (check, apply, verify)", apply_duration.clone());
        r.register("frr_composer_apply_errors", "Applies that FRR refused or that did not verify", apply_errors.clone());
        r.register("frr_composer_drift_repairs", "Times FRR's running configuration had drifted and was repaired", drift_repairs.clone());
        let objects_held = Gauge::default();
        let objects_left_out = Gauge::default();
        r.register(
            "frr_composer_configurations_held_at_last_good",
            "FRRConfigurations whose current generation is refused on this node while their last good generation stays in effect",
            objects_held.clone(),
        );
        r.register(
            "frr_composer_configurations_left_out",
            "FRRConfigurations whose current generation is refused on this node and that have no earlier generation in effect",
            objects_left_out.clone(),
        );
        r.register("frr_composer_applies", "Successful applies (also those that found FRR already at the configuration)", applies.clone());
        r.register(
            "frr_composer_commands_sent",
            "Configuration commands sent to FRR by successful applies (0 when FRR already ran the configuration)",
            commands_sent.clone(),
        );
        let frr = FrrCollector::default();
        r.register_collector(Box::new(frr.clone()));
        Metrics {
            updates,
            update_errors,
            config_loaded,
            config_stale,
            apply_duration,
            apply_errors,
            drift_repairs,
            objects_held,
            objects_left_out,
            applies,
            commands_sent,
            frr,
            registry: Arc::new(r),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_anchor_names() {
        let m = Metrics::new();
        m.updates.inc();
        m.frr.0.lock().unwrap().neighbors.push(BgpNeighbor {
            vrf: "default".into(),
            peer: "192.0.2.1".into(),
            remote_as: Some(65102),
            local_as: None,
            state: "Established".into(),
            uptime_msec: Some(1000),
            prefixes_received: 3,
            prefixes_accepted: 3,
            prefixes_sent: 1,
            messages_sent: 7,
            messages_received: 8,
            updates_sent: 2,
            updates_received: 3,
            opens_sent: 1,
            opens_received: 1,
            notifications_sent: 0,
            notifications_received: 0,
            keepalives_sent: 4,
            keepalives_received: 4,
            route_refresh_sent: 0,
            connections_established: 1,
            connections_dropped: 0,
            last_reset_reason: None,
            bfd_status: None,
            families: vec![],
            advertised: None,
            accepted: None,
            installed: None,
            not_installed: None,
        });
        let text = m.encode();
        assert!(text.contains("frrk8s_k8s_client_updates_total 1"), "{text}");
        assert!(text.contains(r#"frrk8s_bgp_session_up{peer="192.0.2.1",vrf="default"} 1"#), "{text}");
        assert!(text.contains(r#"frrk8s_bgp_received_prefixes_total{peer="192.0.2.1",vrf="default"} 3"#), "{text}");
        assert!(text.contains(r#"frrk8s_bgp_updates_total_received{peer="192.0.2.1",vrf="default"} 3"#), "{text}");
    }
}
