//! Typed reads of FRR's state from its JSON output: BGP neighbors per VRF, BFD peers, daemons.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::vtysh::{FrrError, FrrLocation};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpNeighbor {
    /// FRR's VRF name (`default` for the default VRF).
    pub vrf: String,
    pub peer: String,
    pub remote_as: Option<u64>,
    pub local_as: Option<u64>,
    /// Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Milliseconds in the current state (Established: session uptime).
    pub uptime_msec: Option<u64>,
    pub prefixes_received: u64,
    pub prefixes_accepted: u64,
    pub prefixes_sent: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
    pub opens_sent: u64,
    pub opens_received: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub route_refresh_sent: u64,
    pub connections_established: u64,
    pub connections_dropped: u64,
    pub last_reset_reason: Option<String>,
    /// BFD status of the session (Up, Down, ...), when BFD is on.
    pub bfd_status: Option<String>,
    /// The address families the session is activated in, as FRR names them (`ipv4Unicast`).
    pub families: Vec<String>,
    /// The prefixes FRR sent on the session (its advertised routes), when they were read
    /// ([`session_routes`]): at most [`MAX_LISTED`], sorted; `prefixes_sent` counts them all.
    pub advertised: Option<Vec<String>>,
    /// The prefixes FRR accepted from the peer (after the node's inbound policy), when they
    /// were read: at most [`MAX_LISTED`], sorted; `prefixes_accepted` counts them all.
    pub accepted: Option<Vec<String>>,
    /// Of the accepted prefixes, how many FRR installed from this session: the path's next
    /// hop is one of the routing table's installed next hops for the prefix (None: not read).
    pub installed: Option<u64>,
    /// Accepted and not installed from this session (another path or a connected, static or
    /// kernel route is preferred, or the next hop is unreachable): at most [`MAX_LISTED`].
    pub not_installed: Option<Vec<String>>,
}

/// A route FRR holds from a peer: its prefix and the next hops of the peer's path.
pub type PathRoute = (String, BTreeSet<String>);

/// What the routing table (zebra) installed for a prefix: the next hops' addresses and
/// interfaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    pub addresses: BTreeSet<String>,
    pub interfaces: BTreeSet<String>,
}

/// Whether `route`, learned from `peer` (an address, or an interface for an unnumbered
/// neighbor), is the one installed: one of its next hops is an installed next hop of the
/// prefix, or for an interface neighbor the prefix is installed through that interface.
pub fn is_installed(table: &BTreeMap<String, Installed>, peer: &str, route: &PathRoute) -> bool {
    table.get(&route.0).is_some_and(|i| route.1.iter().any(|h| i.addresses.contains(h)) || i.interfaces.contains(peer))
}

/// How many prefixes a session's list holds (the rest are only counted).
pub const MAX_LISTED: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BfdPeer {
    pub vrf: String,
    pub peer: String,
    pub interface: Option<String>,
    pub status: String,
    pub uptime_sec: Option<u64>,
    pub multihop: bool,
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Parses `show bgp vrf all neighbors json`.
pub fn parse_bgp_neighbors(v: &Value) -> Vec<BgpNeighbor> {
    let mut out = Vec::new();
    let Some(vrfs) = v.as_object() else { return out };
    for (vrf, peers) in vrfs {
        let Some(peers) = peers.as_object() else { continue };
        for (peer, n) in peers {
            if !n.is_object() || n.get("bgpState").is_none() {
                continue; // vrfId, vrfName, ...
            }
            let msgs = n.get("messageStats").cloned().unwrap_or(Value::Null);
            let mut received = 0;
            let mut accepted = 0;
            let mut sent = 0;
            let mut families = Vec::new();
            if let Some(afs) = n.get("addressFamilyInfo").and_then(Value::as_object) {
                families = afs.keys().cloned().collect();
                for af in afs.values() {
                    accepted += u(af, "acceptedPrefixCounter");
                    sent += u(af, "sentPrefixCounter");
                    received += af.get("prefixReceivedCounter").and_then(Value::as_u64).unwrap_or_else(|| u(af, "acceptedPrefixCounter"));
                }
            }
            out.push(BgpNeighbor {
                vrf: vrf.clone(),
                peer: peer.clone(),
                remote_as: n.get("remoteAs").and_then(Value::as_u64),
                local_as: n.get("localAs").and_then(Value::as_u64),
                state: n.get("bgpState").and_then(Value::as_str).unwrap_or("").to_string(),
                uptime_msec: n.get("bgpTimerUpMsec").and_then(Value::as_u64),
                prefixes_received: received,
                prefixes_accepted: accepted,
                prefixes_sent: sent,
                messages_sent: u(&msgs, "totalSent"),
                messages_received: u(&msgs, "totalRecv"),
                updates_sent: u(&msgs, "updatesSent"),
                updates_received: u(&msgs, "updatesRecv"),
                opens_sent: u(&msgs, "opensSent"),
                opens_received: u(&msgs, "opensRecv"),
                notifications_sent: u(&msgs, "notificationsSent"),
                notifications_received: u(&msgs, "notificationsRecv"),
                keepalives_sent: u(&msgs, "keepalivesSent"),
                keepalives_received: u(&msgs, "keepalivesRecv"),
                route_refresh_sent: u(&msgs, "routeRefreshSent"),
                connections_established: u(n, "connectionsEstablished"),
                connections_dropped: u(n, "connectionsDropped"),
                last_reset_reason: n.get("lastResetDueTo").and_then(Value::as_str).map(String::from),
                bfd_status: n.get("peerBfdInfo").and_then(|b| b.get("status")).and_then(Value::as_str).map(String::from),
                families,
                advertised: None,
                accepted: None,
                installed: None,
                not_installed: None,
            });
        }
    }
    out.sort_by(|a, b| (&a.vrf, &a.peer).cmp(&(&b.vrf, &b.peer)));
    out
}

/// Parses `show bgp vrf V AFI SAFI neighbors P advertised-routes json` (the prefixes sent, in
/// `advertisedRoutes`) or `... neighbors P routes json` (the prefixes accepted, in `routes`,
/// each with its paths and their `nexthops`).
pub fn parse_session_routes(v: &Value) -> Vec<PathRoute> {
    let Some(m) = v.get("advertisedRoutes").or_else(|| v.get("routes")).and_then(Value::as_object) else { return Vec::new() };
    m.iter()
        .map(|(prefix, paths)| {
            let hops = paths
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p.get("nexthops").and_then(Value::as_array).into_iter().flatten())
                .filter_map(|h| h.get("ip").and_then(Value::as_str).map(String::from))
                .collect();
            (prefix.clone(), hops)
        })
        .collect()
}

/// Parses `show ip route vrf V bgp json` (or `show ipv6 ...`): each prefix with an installed
/// entry, and that entry's next hops in the FIB.
pub fn parse_installed(v: &Value) -> BTreeMap<String, Installed> {
    let mut out = BTreeMap::new();
    for (prefix, entries) in v.as_object().into_iter().flatten() {
        for e in entries.as_array().into_iter().flatten().filter(|e| e.get("installed").and_then(Value::as_bool) == Some(true)) {
            let i: &mut Installed = out.entry(prefix.clone()).or_default();
            for h in e.get("nexthops").and_then(Value::as_array).into_iter().flatten().filter(|h| h.get("fib").and_then(Value::as_bool) == Some(true)) {
                i.addresses.extend(h.get("ip").and_then(Value::as_str).map(String::from));
                i.interfaces.extend(h.get("interfaceName").and_then(Value::as_str).map(String::from));
            }
        }
    }
    out
}

/// Which of a session's routes to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRoutes {
    /// What FRR sent to the peer (`advertised-routes`).
    Advertised,
    /// What FRR accepted from the peer (`routes`: after the inbound policy).
    Accepted,
}

/// The routes of neighbor `n` that `which` asks for, over the unicast families it is
/// activated in, sorted by prefix, all of them (an interface neighbor is named by its
/// interface).
pub fn session_routes(loc: &FrrLocation, n: &BgpNeighbor, which: SessionRoutes) -> Result<Vec<PathRoute>, FrrError> {
    let what = match which {
        SessionRoutes::Advertised => "advertised-routes",
        SessionRoutes::Accepted => "routes",
    };
    let mut out = Vec::new();
    for (family, afi) in [("ipv4Unicast", "ipv4"), ("ipv6Unicast", "ipv6")] {
        if n.families.iter().any(|f| f == family) {
            out.extend(parse_session_routes(&loc.show_json(&format!("show bgp vrf {} {afi} unicast neighbors {} {what} json", n.vrf, n.peer))?));
        }
    }
    out.sort_by_key(|(p, _)| (p.parse::<ipnet::IpNet>().ok(), p.clone()));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// The BGP routes the routing table installed in `vrf`, both families.
pub fn installed_routes(loc: &FrrLocation, vrf: &str) -> Result<BTreeMap<String, Installed>, FrrError> {
    let mut out = parse_installed(&loc.show_json(&format!("show ip route vrf {vrf} bgp json"))?);
    out.extend(parse_installed(&loc.show_json(&format!("show ipv6 route vrf {vrf} bgp json"))?));
    Ok(out)
}

/// Parses `show bfd peers json` (a list of peers, each with its VRF).
pub fn parse_bfd_peers(v: &Value) -> Vec<BfdPeer> {
    let mut out: Vec<BfdPeer> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| BfdPeer {
                    vrf: p.get("vrf").and_then(Value::as_str).unwrap_or("default").to_string(),
                    peer: p.get("peer").and_then(Value::as_str).unwrap_or("").to_string(),
                    interface: p.get("interface").and_then(Value::as_str).map(String::from),
                    status: p.get("status").and_then(Value::as_str).unwrap_or("").to_string(),
                    uptime_sec: p.get("uptime").and_then(Value::as_u64),
                    multihop: p.get("multihop").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| (&a.vrf, &a.peer).cmp(&(&b.vrf, &b.peer)));
    out
}

pub fn bgp_neighbors(loc: &FrrLocation) -> Result<Vec<BgpNeighbor>, FrrError> {
    Ok(parse_bgp_neighbors(&loc.show_json("show bgp vrf all neighbors json")?))
}

pub fn bfd_peers(loc: &FrrLocation) -> Result<Vec<BfdPeer>, FrrError> {
    Ok(parse_bfd_peers(&loc.show_json("show bfd peers json")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show bgp vrf default ipv4 unicast neighbors 192.0.2.1 advertised-routes json` as FRR
    /// answers it: the prefixes are the keys of `advertisedRoutes`.
    #[test]
    fn advertised_routes_are_the_keys_of_advertised_routes() {
        let v = serde_json::json!({"bgpTableVersion": 3, "bgpLocalRouterId": "192.0.2.11", "defaultLocPrf": 100, "localAS": 64512,
            "advertisedRoutes": {"198.51.100.181/32": {"addrPrefix": "198.51.100.181", "prefixLen": 32, "network": "198.51.100.181/32", "nextHop": "0.0.0.0"},
                                 "203.0.113.0/24": {"network": "203.0.113.0/24"}}, "totalPrefixCounter": 2, "filteredPrefixCounter": 0});
        let prefixes = |v: &Value| parse_session_routes(v).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        assert_eq!(prefixes(&v), ["198.51.100.181/32", "203.0.113.0/24"]);
        assert!(parse_session_routes(&serde_json::json!({})).is_empty(), "a session with nothing sent");
        // `... neighbors P routes json`: what was accepted, under `routes`, with each path's
        // next hops (an IPv6 path has its global and its link-local address)
        let v = serde_json::json!({"vrfId": 0, "routes": {
            "203.0.113.0/24": [{"valid": true, "bestpath": true, "network": "203.0.113.0/24", "nexthops": [{"ip": "192.0.2.1", "afi": "ipv4", "used": true}]}],
            "2001:db8:5::/64": [{"valid": true, "nexthops": [{"ip": "2001:db8::1", "scope": "global"}, {"ip": "fe80::1", "scope": "link-local", "used": true}]}]}});
        let r = parse_session_routes(&v);
        assert_eq!(r[0], ("2001:db8:5::/64".to_string(), BTreeSet::from(["2001:db8::1".to_string(), "fe80::1".to_string()])));
        assert_eq!(r[1], ("203.0.113.0/24".to_string(), BTreeSet::from(["192.0.2.1".to_string()])));
    }

    /// `show ip route bgp json` as FRR 8.4 answers it: an entry another route beats has no
    /// `installed` and its next hops no `fib`.
    #[test]
    fn installed_routes_are_the_entries_in_the_fib() {
        let v = serde_json::json!({
            "203.0.113.0/24": [{"prefix": "203.0.113.0/24", "protocol": "bgp", "selected": true, "installed": true,
                "nexthops": [{"fib": true, "ip": "192.0.2.1", "afi": "ipv4", "interfaceName": "eth0", "active": true},
                             {"ip": "192.0.2.2", "afi": "ipv4", "interfaceName": "eth0"}]}],
            "198.51.100.0/25": [{"prefix": "198.51.100.0/25", "protocol": "bgp", "distance": 20, "nexthops": [{"ip": "192.0.2.1", "afi": "ipv4"}]}],
            "198.51.100.128/25": [{"protocol": "bgp", "installed": true, "nexthops": [{"fib": true, "ip": "fe80::1", "interfaceName": "eth1"}]}]});
        let t = parse_installed(&v);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["198.51.100.128/25", "203.0.113.0/24"]);
        let route = |p: &str, h: &[&str]| (p.to_string(), h.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        assert!(is_installed(&t, "192.0.2.1", &route("203.0.113.0/24", &["192.0.2.1"])));
        assert!(!is_installed(&t, "192.0.2.2", &route("203.0.113.0/24", &["192.0.2.2"])), "a next hop not in the FIB");
        assert!(!is_installed(&t, "192.0.2.1", &route("198.51.100.0/25", &["192.0.2.1"])), "beaten by another route");
        // an unnumbered neighbor: by its interface
        assert!(is_installed(&t, "eth1", &route("198.51.100.128/25", &["fe80::9"])));
    }

    #[test]
    fn parses_neighbors_of_every_vrf() {
        let v: Value = serde_json::from_str(r#"{
          "default": {"vrfId": 0, "vrfName": "default",
            "192.0.2.1": {"remoteAs": 65102, "localAs": 65801, "bgpState": "Established", "bgpTimerUpMsec": 12000,
              "connectionsEstablished": 1, "connectionsDropped": 0, "lastResetDueTo": "No AFI/SAFI activated for peer",
              "messageStats": {"opensSent": 1, "opensRecv": 1, "updatesSent": 2, "updatesRecv": 3, "keepalivesSent": 4, "keepalivesRecv": 4, "totalSent": 7, "totalRecv": 8},
              "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 3, "sentPrefixCounter": 1}},
              "peerBfdInfo": {"status": "Up"}}},
          "red": {"vrfId": 5, "vrfName": "red", "2001:db8::1": {"remoteAs": 1, "bgpState": "Active"}}
        }"#).unwrap();
        let n = parse_bgp_neighbors(&v);
        assert_eq!(n.len(), 2);
        assert_eq!((n[0].peer.as_str(), n[0].state.as_str(), n[0].prefixes_accepted, n[0].prefixes_sent), ("192.0.2.1", "Established", 3, 1));
        assert_eq!(n[0].bfd_status.as_deref(), Some("Up"));
        assert_eq!(n[0].messages_received, 8);
        assert_eq!(n[1].vrf, "red");
    }
}
