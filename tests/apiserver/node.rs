//! The node an agent under test drives: an FRR in a network namespace of its own, linked, when
//! the test needs one, to a GoBGP router; and an API server with the CRDs, the agents'
//! namespace and the Node object.
//!
//! ```ignore
//! let Some((tmp, frr, api)) = node::frr_with_apiserver(FrrVersion::V10, NS, NODE) else { return };
//! let peering = Peering { node_ip: "192.0.2.113", node_asn: 65801, router_ip: "192.0.2.1", router_asn: 65102 };
//! let Some((tmp, frr, router, api)) = node::frr_router_apiserver(version, NS, NODE, peering) else { return };
//! let agent = AgentUnderTest::start(&api, &frr.cli_args(), "wk3", NS, tmp.path(), &[]);
//! assert!(router.received_prefixes(peering.node_ip)?.contains("198.51.100.181/32"));
//! ```
//!
//! [`NodeFrr`] and [`Router`] are the daemons (`Frr`, `GoBgp` through `Deref`) with their
//! namespaces, which they remove when dropped, after the daemons.

use std::ops::{Deref, DerefMut};

use frr_composer::lab::{veth, Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};

use super::ApiServer;

/// The node's FRR, in its namespace.
pub struct NodeFrr {
    frr: Frr,
    ns: Netns,
}

impl NodeFrr {
    /// FRR `version` in a namespace of its own.
    pub fn start(version: FrrVersion) -> anyhow::Result<NodeFrr> {
        let ns = Netns::new()?;
        let frr = Frr::start(version, &ns)?;
        Ok(NodeFrr { frr, ns })
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

impl Deref for NodeFrr {
    type Target = Frr;
    fn deref(&self) -> &Frr {
        &self.frr
    }
}

impl DerefMut for NodeFrr {
    fn deref_mut(&mut self) -> &mut Frr {
        &mut self.frr
    }
}

/// A GoBGP router in its namespace, peering with the node.
pub struct Router {
    gobgp: GoBgp,
    _ns: Netns,
}

impl Deref for Router {
    type Target = GoBgp;
    fn deref(&self) -> &GoBgp {
        &self.gobgp
    }
}

/// The session between the node (`node_ip`/24 on its eth0) and the router (`router_ip`/24).
#[derive(Clone, Copy, Debug)]
pub struct Peering {
    pub node_ip: &'static str,
    pub node_asn: u32,
    pub router_ip: &'static str,
    pub router_asn: u32,
}

/// An API server with the CRDs, the agents' `namespace` and the Node object `node` (YAML).
fn apiserver(namespace: &str, node: &str) -> ApiServer {
    let api = ApiServer::start().unwrap();
    api.install_crds().unwrap();
    api.kubectl(&["create", "namespace", namespace]).unwrap();
    api.kubectl_stdin(&["apply", "-f", "-"], node).unwrap();
    api
}

/// Whether the lab (`reqs`) and the API server can run: as `lab::require` and
/// `apiserver::require` decide (skipped, or under CI=true a failure).
fn require(reqs: &[Req]) -> bool {
    crate::support::require_lab(reqs) && super::require()
}

/// FRR `version` in a namespace of its own, and the API server (None: skipped).
pub fn frr_with_apiserver(version: FrrVersion, namespace: &str, node: &str) -> Option<(TempDir, NodeFrr, ApiServer)> {
    if !require(&[Req::Frr(version)]) {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let frr = NodeFrr::start(version).unwrap();
    Some((tmp, frr, apiserver(namespace, node)))
}

/// As [`frr_with_apiserver`], the node linked to a GoBGP router as `peering` says (None:
/// skipped).
pub fn frr_router_apiserver(version: FrrVersion, namespace: &str, node: &str, peering: Peering) -> Option<(TempDir, NodeFrr, Router, ApiServer)> {
    if !require(&[Req::Frr(version), Req::GoBgp]) {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let router_ns = Netns::new().unwrap();
    let Peering { node_ip, node_asn, router_ip, router_asn } = peering;
    veth(&node_ns, "eth0", &[&format!("{node_ip}/24")], &router_ns, "eth0", &[&format!("{router_ip}/24")]).unwrap();
    let gobgp = GoBgp::start(&router_ns, router_asn, router_ip, &[GoBgpNeighbor::new(node_ip, node_asn)]).unwrap();
    let frr = Frr::start(version, &node_ns).unwrap();
    Some((tmp, NodeFrr { frr, ns: node_ns }, Router { gobgp, _ns: router_ns }, apiserver(namespace, node)))
}
