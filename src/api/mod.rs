//! Kubernetes types of the `frrk8s.metallb.io/v1beta1` API, JSON names identical to metallb/frr-k8s.
//!
//! Only types and schemas live here; every semantic check is in [`crate::core`].
// `printcolumn(name = .., type_ = "string", ..)` repeats `type_ = "string"` across columns,
// which clippy takes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

mod schema;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use schema::all_crds;

pub const GROUP: &str = "frrk8s.metallb.io";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "frrk8s.metallb.io/v1beta1";
/// Labels of the BGPSessionState objects, as frr-k8s sets them: the node, the peer and the VRF
/// of the session (the agent watches its own by the node label).
pub const LABEL_NODE: &str = "frrk8s.metallb.io/node";
pub const LABEL_PEER: &str = "frrk8s.metallb.io/peer";
pub const LABEL_VRF: &str = "frrk8s.metallb.io/vrf";

/// FRRConfiguration: one actor's share of the BGP configuration of the nodes it selects.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "frrk8s.metallb.io",
    version = "v1beta1",
    kind = "FRRConfiguration",
    plural = "frrconfigurations",
    singular = "frrconfiguration",
    namespaced,
    status = "FRRConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "FRRConfiguration is a piece of FRR configuration for the nodes its nodeSelector matches; all the pieces that select a node are merged."
)]
#[serde(rename_all = "camelCase")]
pub struct FRRConfigurationSpec {
    #[serde(default)]
    pub bgp: BgpConfig,
    /// Raw FRR configuration appended verbatim. UNSUPPORTED, for experimentation only.
    #[serde(default)]
    pub raw: RawConfig,
    /// Limits the configuration to the nodes whose labels match. Empty: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub node_selector: Option<LabelSelector>,
}

/// Where the configuration is applied and what stopped it elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FRRConfigurationStatus {
    /// Nodes that currently run this configuration (each node's agent owns its own entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub applied_on: Vec<String>,
    /// Per node, why the configuration could not be applied there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub errors: Vec<NodeError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeError {
    pub node: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfig {
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub routers: Vec<Router>,
    #[serde(default, rename = "bfdProfiles")]
    pub bfd_profiles: Vec<BfdProfile>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RawConfig {
    /// Ordering of the raw snippets: higher means later in the file.
    #[serde(default)]
    pub priority: i32,
    #[serde(default, rename = "rawConfig")]
    pub raw_config: String,
}

/// One BGP instance (per VRF) of the node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Router {
    #[schemars(schema_with = "schema::router_asn")]
    pub asn: u32,
    /// BGP router-id (an IPv4 address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// VRF of the router; empty is the default VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// At most 1,000 (frr-composer's bound; upstream admits any number).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub neighbors: Vec<Neighbor>,
    /// Prefixes the router originates (`network` statements).
    #[serde(default)]
    #[schemars(schema_with = "schema::cidrs")]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub imports: Vec<Import>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evpn: Option<EvpnConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Import {
    /// VRF to import routes from; `default` is the default VRF.
    #[serde(default)]
    pub vrf: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    Internal,
    External,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    Unicast,
    Evpn,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllowMode {
    All,
    #[default]
    Filtered,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Neighbor {
    /// Peer ASN; 0 means unset (then dynamicASN is required).
    #[serde(default)]
    #[schemars(schema_with = "schema::asn")]
    pub asn: u32,
    #[serde(default, rename = "dynamicASN", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::dynamic_asn")]
    pub dynamic_asn: Option<DynamicAsn>,
    #[serde(default, rename = "localASN", skip_serializing_if = "is_zero")]
    #[schemars(schema_with = "schema::local_asn")]
    pub local_asn: u32,
    /// Source address (an IP) or interface for the session (`update-source`).
    #[serde(default, rename = "sourceaddress", skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Node interface for unnumbered BGP peering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::port")]
    pub port: Option<u32>,
    /// Cleartext password (prefer passwordSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A `kubernetes.io/basic-auth` Secret in the agent's namespace holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub password_secret: Option<SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub hold_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub keepalive_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::connect_time")]
    pub connect_time: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ebgp_multi_hop: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_graceful_restart: bool,
    #[serde(default)]
    pub to_advertise: Advertise,
    #[serde(default)]
    pub to_receive: Receive,
    /// Deprecated and ignored.
    #[serde(default, rename = "disableMP")]
    pub disable_mp: bool,
    #[serde(default)]
    pub dual_stack_address_family: bool,
    /// Empty means unicast (the API server stores `[unicast]` for a neighbor without it, as
    /// upstream's CRD does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2), extend("default" = ["unicast"]))]
    pub address_families: Vec<AddressFamily>,
    /// Accept routes whose AS path holds the local AS: `origin` (only as the origin), `1`-`10`
    /// (up to that many times); empty or `none` refuse them (FRR's default), `none` also
    /// against other configurations of the same neighbor.
    #[serde(default, rename = "allowAsIn", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::allow_as_in")]
    pub allow_as_in: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Advertise {
    #[serde(default)]
    pub allowed: AllowedOutPrefixes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHop>,
    // at most 1,000 each: with withCommunity at most 4,000 route-map entries per neighbor (core::model::MAX_PROPERTY_ENTRIES)
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub with_local_pref: Vec<LocalPrefPrefixes>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub with_community: Vec<CommunityPrefixes>,
    /// frr-k8s v0.0.27 (written by MetalLB v0.16.2 for a BGPAdvertisement's asPathPrepend):
    /// prefixes advertised with the local ASN prepended to their AS path, N times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub with_as_path_prepend: Vec<AsPathPrependPrefixes>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AllowedOutPrefixes {
    #[serde(default)]
    #[schemars(schema_with = "schema::cidrs")]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub mode: AllowMode,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NextHop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ipv4")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ipv6")]
    pub ipv6: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalPrefPrefixes {
    #[schemars(schema_with = "schema::cidrs_min1")]
    pub prefixes: Vec<String>,
    #[schemars(schema_with = "schema::asn")]
    pub local_pref: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsPathPrependPrefixes {
    #[schemars(schema_with = "schema::cidrs_min1")]
    pub prefixes: Vec<String>,
    /// How many times the local ASN (the neighbor's localASN, else the router's) is prepended.
    #[schemars(schema_with = "schema::as_path_prepend")]
    pub as_path_prepend: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityPrefixes {
    #[schemars(schema_with = "schema::cidrs_min1")]
    pub prefixes: Vec<String>,
    /// `A:B` (standard) or `large:A:B:C` (large community).
    pub community: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Receive {
    #[serde(default)]
    pub allowed: AllowedInPrefixes,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AllowedInPrefixes {
    #[serde(default)]
    pub prefixes: Vec<PrefixSelector>,
    #[serde(default)]
    pub mode: AllowMode,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = schema::prefix_selector_rules()))]
pub struct PrefixSelector {
    #[schemars(schema_with = "schema::selector_cidr")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(schema_with = "schema::prefix_len")]
    pub le: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(schema_with = "schema::prefix_len")]
    pub ge: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BfdProfile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bfd_interval")]
    pub receive_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bfd_interval")]
    pub transmit_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bfd_multiplier")]
    pub detect_multiplier: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bfd_interval")]
    pub echo_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bfd_ttl")]
    pub minimum_ttl: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AdvertiseVnis {
    Disabled,
    All,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvpnConfig {
    #[serde(default, rename = "advertiseVNIs", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::advertise_vnis")]
    pub advertise_vnis: Option<AdvertiseVnis>,
    #[serde(default, rename = "advertiseSVI", skip_serializing_if = "is_false")]
    pub advertise_svi: bool,
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub l2vnis: Vec<L2Vni>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3vni: Option<L3Vni>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L2Vni {
    #[schemars(schema_with = "schema::vni")]
    pub vni: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::route_distinguisher")]
    pub rd: Option<String>,
    #[serde(default, rename = "importRTs")]
    #[schemars(schema_with = "schema::import_rts")]
    pub import_rts: Vec<String>,
    #[serde(default, rename = "exportRTs")]
    #[schemars(schema_with = "schema::export_rts")]
    pub export_rts: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdvertisePrefixFamily {
    Unicast,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L3Vni {
    #[schemars(schema_with = "schema::vni")]
    pub vni: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::route_distinguisher")]
    pub rd: Option<String>,
    #[serde(default, rename = "importRTs")]
    #[schemars(schema_with = "schema::import_rts")]
    pub import_rts: Vec<String>,
    #[serde(default, rename = "exportRTs")]
    #[schemars(schema_with = "schema::export_rts")]
    pub export_rts: Vec<String>,
    #[schemars(length(min = 1, max = 1))]
    pub advertise_prefixes: Vec<AdvertisePrefixFamily>,
}

/// FRRNodeState: what runs on one node (cluster-scoped, named after the node).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "frrk8s.metallb.io",
    version = "v1beta1",
    kind = "FRRNodeState",
    plural = "frrnodestates",
    singular = "frrnodestate",
    status = "FRRNodeStateStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "FRR", type_ = "string", json_path = ".status.frrVersion"),
    printcolumn(name = "Reload", type_ = "string", json_path = ".status.lastReloadResult"),
    printcolumn(name = "Conversion", type_ = "string", json_path = ".status.lastConversionResult"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "FRRNodeState reports the FRR configuration running on a node and the result of the last conversion and reload."
)]
pub struct FRRNodeStateSpec {}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FRRNodeStateStatus {
    /// The version of the FRR the agent applies to, as `show version` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frr_version: Option<String>,
    /// FRR's running configuration, passwords redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reload_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_conversion_result: Option<String>,
    /// `namespace/name` -> metadata.generation of every FRRConfiguration merged into the running config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observed_generations: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// BGPSessionState: one BGP session of one node.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "frrk8s.metallb.io",
    version = "v1beta1",
    kind = "BGPSessionState",
    plural = "bgpsessionstates",
    singular = "bgpsessionstate",
    namespaced,
    status = "BGPSessionStateStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Peer", type_ = "string", json_path = ".status.peer"),
    printcolumn(name = "VRF", type_ = "string", json_path = ".status.vrf"),
    printcolumn(name = "BGP", type_ = "string", json_path = ".status.bgpStatus"),
    printcolumn(name = "BFD", type_ = "string", json_path = ".status.bfdStatus"),
    doc = "BGPSessionState reports the state of one BGP session of a node."
)]
pub struct BGPSessionStateSpec {}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPSessionStateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// Prefixes the node advertises on the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::count")]
    pub prefixes_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::count")]
    pub prefixes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::count")]
    pub prefixes_accepted: Option<u64>,
    /// When the session last became Established (RFC 3339), while it is Established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset_reason: Option<String>,
    /// The prefixes the node's FRR sent on the session (its advertised routes), sorted; at most
    /// 100 are listed, `prefixesSent` counts them all. Empty while the session is not
    /// Established. Read from FRR only when the session's updates change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub advertised_prefixes: Option<Vec<String>>,
    /// The prefixes the node's FRR accepted from the peer (after the node's inbound policy),
    /// sorted; at most 100 are listed, `prefixesAccepted` counts them all; received and not
    /// accepted is `prefixesReceived - prefixesAccepted`. Empty while the session is not
    /// Established. Read from FRR only when the session's updates received change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub accepted_prefixes: Option<Vec<String>>,
    /// Of the accepted prefixes, how many FRR installed in the node's routing table from this
    /// session (the path's next hop is an installed next hop of the prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::count")]
    pub prefixes_installed: Option<u64>,
    /// Accepted and not installed from this session: a route FRR prefers (another peer's path,
    /// a connected, static or kernel route) holds the prefix, or the next hop is unreachable.
    /// Sorted; at most 100 are listed, `prefixesAccepted - prefixesInstalled` counts them all.
    /// Read again when the VRF's sessions receive updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub not_installed_prefixes: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    All,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    None,
}

/// FRRK8sConfiguration: runtime settings of the agents (only the object named `config` is read).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "frrk8s.metallb.io",
    version = "v1beta1",
    kind = "FRRK8sConfiguration",
    plural = "frrk8sconfigurations",
    singular = "frrk8sconfiguration",
    namespaced,
    status = "FRRK8sConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "FRRK8sConfiguration holds runtime settings of frr-composer (the object named `config`)."
)]
#[serde(rename_all = "camelCase")]
pub struct FRRK8sConfigurationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::log_level")]
    pub log_level: Option<LogLevel>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FRRK8sConfigurationStatus {}
