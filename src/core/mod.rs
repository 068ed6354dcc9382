//! The pure core: select, resolve, validate and merge FRRConfigurations into a typed model.
//! No I/O, no async, deterministic order.

pub mod capability;
pub mod cluster_index;
pub mod convert;
pub mod error;
pub mod impact;
pub mod isolation;
pub mod merge;
pub mod model;
pub mod values;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::IpNet;
use kube::core::{Selector, SelectorExt};
use kube::ResourceExt;

pub use convert::SecretEntry;
pub use error::{Error, Errors, ObjRef};
pub use model::Model;

use crate::api::{FRRConfiguration, LogLevel};

/// Settings of the agent (or of the `render` command line).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Only FRRConfigurations and Secrets of this namespace are read.
    pub namespace: String,
    pub hostname: String,
    pub log_level: LogLevel,
    /// CIDRs every neighbor refuses, whatever the configurations say.
    pub always_block: Vec<IpNet>,
    /// Whether the node has a non-loopback IPv4 address; without one, routers without an
    /// explicit id get a router-id derived from the hostname.
    pub node_has_ipv4: bool,
    /// The running FRR's version (`show version`), when known: an object that needs a newer
    /// FRR is refused with the field and both versions ([`capability`]).
    pub frr_version: Option<String>,
}

/// What the core reads: the node's labels, the configurations and the Secrets.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    pub node_labels: &'a BTreeMap<String, String>,
    pub configs: &'a [FRRConfiguration],
    /// Secrets of `Settings::namespace`, by name.
    pub secrets: &'a BTreeMap<String, SecretEntry>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Composition {
    pub model: Model,
    /// Configurations merged into the model, sorted.
    pub selected: Vec<ObjRef>,
    /// Configurations in the namespace whose nodeSelector does not match the node.
    pub not_selected: Vec<ObjRef>,
    /// Configurations outside the namespace (ignored, as the agent would ignore them).
    pub other_namespace: Vec<ObjRef>,
}

pub fn obj_ref(c: &FRRConfiguration) -> ObjRef {
    ObjRef::new(c.namespace().unwrap_or_default(), c.name_any())
}

/// Whether a LabelSelector matches the labels; errors name the problem with the selector.
pub fn selector_matches(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    Ok(parse_selector(sel)?.matches(labels))
}

/// A LabelSelector checked and parsed once (its errors do not depend on any node's labels).
pub fn parse_selector(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<Selector, String> {
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let n = req.values.as_ref().map_or(0, |v| v.len());
        match req.operator.as_str() {
            "In" | "NotIn" if n == 0 => return Err(format!("matchExpressions[{i}]: operator {} needs at least one value", req.operator)),
            "Exists" | "DoesNotExist" if n > 0 => return Err(format!("matchExpressions[{i}]: operator {} takes no values", req.operator)),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => return Err(format!("matchExpressions[{i}]: unknown operator {op:?} (In, NotIn, Exists, DoesNotExist)")),
        }
        if req.key.is_empty() {
            return Err(format!("matchExpressions[{i}]: the key is empty"));
        }
    }
    Selector::try_from(sel.clone()).map_err(|e| e.to_string())
}

/// The router-id used on nodes without IPv4: CRC32 (IEEE) of the hostname, little-endian, as an
/// IPv4 address (the anchor's choice, so ids stay the same after a migration).
pub fn fallback_router_id(hostname: &str) -> Ipv4Addr {
    let c = crc32fast::hash(hostname.as_bytes()).to_le_bytes();
    Ipv4Addr::new(c[0], c[1], c[2], c[3])
}

/// Selects the configurations for the node, converts and merges them.
pub fn compose(settings: &Settings, snap: Snapshot<'_>) -> Result<Composition, Errors> {
    let mut errors = Vec::new();
    if let Err(e) = values::check_hostname(&settings.hostname) {
        errors.push(Error::Setting { setting: "hostname".into(), reason: e });
    }
    for net in &settings.always_block {
        if net.trunc() != *net {
            errors.push(Error::Setting { setting: "always-block".into(), reason: format!("{net} has host bits set") });
        }
    }

    // Sort first: everything after this point sees the objects in one order.
    let mut configs: Vec<(ObjRef, &FRRConfiguration)> = snap.configs.iter().map(|c| (obj_ref(c), c)).collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut selected = Vec::new();
    let mut not_selected = Vec::new();
    let mut other_namespace = Vec::new();
    let mut contribs = Vec::new();
    for (i, (obj, cfg)) in configs.iter().enumerate() {
        if i > 0 && configs[i - 1].0 == *obj {
            if configs[i - 1].1.spec != cfg.spec {
                errors.push(Error::invalid(obj, "metadata.name", "two different objects with this namespace and name were given"));
            }
            continue;
        }
        if let Err(e) = values::check_object_name(&obj.namespace, &obj.name) {
            errors.push(Error::invalid(obj, "metadata", e));
            continue;
        }
        if *obj.namespace != *settings.namespace {
            other_namespace.push(obj.clone());
            continue;
        }
        let matches = match &cfg.spec.node_selector {
            None => Ok(true),
            Some(sel) => selector_matches(sel, snap.node_labels),
        };
        match matches {
            Err(e) => errors.push(Error::invalid(obj, "spec.nodeSelector", format!("invalid nodeSelector: {e}"))),
            Ok(false) => not_selected.push(obj.clone()),
            Ok(true) => {
                selected.push(obj.clone());
                match convert::convert(obj, &cfg.spec, snap.secrets) {
                    Ok(c) => {
                        let lacking = capability::check(obj, &cfg.spec, settings.frr_version.as_deref());
                        if lacking.is_empty() {
                            contribs.push(c);
                        } else {
                            errors.extend(lacking);
                        }
                    }
                    Err(es) => errors.extend(es),
                }
            }
        }
    }
    // Merge what converted, so that conflicts are reported together with per-object errors.
    let merged = merge::merge(&contribs, &settings.always_block);
    let merged = match merged {
        Ok(m) if errors.is_empty() => m,
        Ok(_) => return Err(Errors::new(errors)),
        Err(es) => {
            errors.extend(es);
            return Err(Errors::new(errors));
        }
    };
    let mut routers = merged.routers;
    if !settings.node_has_ipv4 {
        let id = fallback_router_id(&settings.hostname);
        for r in routers.iter_mut().filter(|r| r.router_id.is_none()) {
            r.router_id = Some(id);
        }
    }
    Ok(Composition {
        model: Model {
            log_level: model::frr_log_level(settings.log_level),
            hostname: settings.hostname.clone(),
            routers,
            bfd_profiles: merged.bfd_profiles,
            raw: merged.raw,
            warnings: merged.warnings,
        },
        selected,
        not_selected,
        other_namespace,
    })
}
