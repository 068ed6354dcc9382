//! Hand-written schema pieces: integer bounds, formats and CEL rules that the derive cannot express,
//! and the list of every CRD this project serves.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::CustomResourceExt;
use schemars::{json_schema, Schema, SchemaGenerator};

pub fn router_asn(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer", "format": "int64", "minimum": 1, "maximum": 4294967295u64,
        "description": "AS number of the router (1-4294967295)."
    })
}

pub fn asn(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64})
}

/// As upstream (v0.0.27): how many times the local ASN is prepended, 1-10.
pub fn as_path_prepend(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 1, "maximum": 10})
}

/// As upstream: when present, 1-4294967295 (0, unset, is never sent).
pub fn local_asn(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 4294967295u64})
}

pub fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer", "minimum": 0, "maximum": 65535,
        "description": "TCP port of the peer; unset means 179."
    })
}

pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$",
        "description": "A Go duration such as 90s, 1m30s or 33.333333333s."
    })
}

pub fn connect_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "x-kubernetes-validations": [
            {"rule": "duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535",
             "message": "connect time should be between 1 seconds to 65535"},
            {"rule": "duration(self).getMilliseconds() % 1000 == 0",
             "message": "connect time should contain a whole number of seconds"}
        ]
    })
}

pub fn ipv4(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "ipv4"})
}

pub fn ipv6(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "ipv6"})
}

/// The prefix of a le/ge selector: bounded in length so that the API server's CEL cost
/// estimate for the rules below stays small (the longest spelling of an IPv6 prefix, with an
/// embedded IPv4 address, is 49 characters).
pub fn selector_cidr(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "cidr", "maxLength": 64})
}

/// CEL rules of a le/ge selector, checked per item by the API server: the bounds of the
/// prefix's family (the schema alone allows 128 for both) and `ge` not above `le`. The rest
/// (bounds not shorter than the prefix) is checked by frr-composer itself.
pub fn prefix_selector_rules() -> serde_json::Value {
    serde_json::json!([
        {"rule": "self.prefix.contains(':') || ((!has(self.le) || self.le <= 32) && (!has(self.ge) || self.ge <= 32))",
         "message": "le and ge can be at most 32 for an IPv4 prefix"},
        {"rule": "!has(self.le) || !has(self.ge) || self.ge <= self.le",
         "message": "ge must not be greater than le"}
    ])
}

/// A list of CIDR prefixes, each checked by the API server (the anchor puts `format: cidr`
/// on the list itself, where it has no effect, or nowhere).
pub fn cidrs(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "string", "format": "cidr"}})
}

pub fn cidrs_min1(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "minItems": 1, "items": {"type": "string", "format": "cidr"}})
}

pub fn prefix_len(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 128})
}

pub fn bfd_interval(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32", "minimum": 10, "maximum": 60000})
}

pub fn bfd_multiplier(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32", "minimum": 2, "maximum": 255})
}

pub fn bfd_ttl(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 254})
}

pub fn vni(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 16777215})
}

// Route distinguishers and route targets: `GLOBAL:LOCAL`, the global part a number or an IPv4
// address (`*` too for import RTs). The anchor expresses this as six CEL rules; nested in lists
// (routers x l2vnis x RTs) their estimated cost exceeds the API server's budget, so the shape is
// checked by a pattern here and the numeric ranges by frr-composer (refused with a message that
// names the field).
const RD_PATTERN: &str = r"^([0-9]{1,10}|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}):[0-9]{1,10}$";
const IMPORT_RT_PATTERN: &str = r"^(\*|[0-9]{1,10}|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}):[0-9]{1,10}$";

pub fn route_distinguisher(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "maxLength": 21, "pattern": RD_PATTERN})
}

pub fn import_rts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 21, "pattern": IMPORT_RT_PATTERN}})
}

pub fn export_rts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 21, "pattern": RD_PATTERN}})
}

pub fn count(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int64", "minimum": 0})
}

/// Every CRD this project serves, in a fixed order, with the file name it is committed under.
pub fn all_crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("frrk8s.metallb.io_frrconfigurations.yaml", bound_node_selector(upstream_shape(super::FRRConfiguration::crd()))),
        ("frrk8s.metallb.io_frrnodestates.yaml", upstream_shape(super::FRRNodeState::crd())),
        ("frrk8s.metallb.io_bgpsessionstates.yaml", upstream_shape(super::BGPSessionState::crd())),
        ("frrk8s.metallb.io_frrk8sconfigurations.yaml", upstream_shape(super::FRRK8sConfiguration::crd())),
    ]
}

/// The most one nodeSelector may hold: expressions and labels, values per expression.
pub const MAX_SELECTOR_TERMS: usize = 64;
pub const MAX_SELECTOR_VALUES: usize = 1000;

/// Bounds the nodeSelector, which every agent keeps for every object (also one that selects
/// another rack): unbounded, a 2.7 MB object of 900,000 empty `NotIn` values took each agent
/// to 101 MB. Kubernetes' own limits on label keys (317 bytes with the prefix) and values (63)
/// apply too.
fn bound_node_selector(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for v in crd.spec.versions.iter_mut() {
        let Some(schema) = v.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) else { continue };
        let mut json = serde_json::to_value(&*schema).expect("a schema serialises");
        let sel = &mut json["properties"]["spec"]["properties"]["nodeSelector"]["properties"];
        let exprs = &mut sel["matchExpressions"];
        exprs["maxItems"] = MAX_SELECTOR_TERMS.into();
        let req = &mut exprs["items"]["properties"];
        req["key"]["maxLength"] = 317.into();
        req["values"]["maxItems"] = MAX_SELECTOR_VALUES.into();
        req["values"]["items"]["maxLength"] = 63.into();
        sel["matchLabels"]["maxProperties"] = MAX_SELECTOR_TERMS.into();
        sel["matchLabels"]["additionalProperties"]["maxLength"] = 63.into();
        *schema = serde_json::from_value(json).expect("a bounded schema is still a schema");
    }
    crd
}

/// The defaults upstream's CRDs declare (property name and value); the API server stores
/// them in objects that leave the field out, so ours must declare exactly these.
const UPSTREAM_DEFAULTS: &[(&str, &str)] =
    &[("disableMP", "false"), ("dualStackAddressFamily", "false"), ("mode", "\"filtered\""), ("addressFamilies", "[\"unicast\"]")];

/// Stores objects as upstream's CRDs do. The derive declares a default for every field with a
/// serde default (`[]`, `0`, `""`, `{}`) and marks every `Option` nullable; the API server
/// would then add those defaults to what a client sends (and keep explicit nulls), so objects
/// written by MetalLB would not read back as written. Only upstream's own defaults stay.
fn upstream_shape(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(name: &str, v: &mut serde_json::Value) {
        let Some(obj) = v.as_object_mut() else { return };
        obj.remove("nullable");
        if let Some(d) = obj.get("default") {
            let keep = UPSTREAM_DEFAULTS.iter().any(|(n, val)| *n == name && serde_json::from_str::<serde_json::Value>(val).ok().as_ref() == Some(d));
            if !keep {
                obj.remove("default");
            }
        }
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            for (k, s) in props.iter_mut() {
                walk(k, s);
            }
        }
        if let Some(items) = obj.get_mut("items") {
            walk("", items);
        }
        if let Some(extra) = obj.get_mut("additionalProperties") {
            walk("", extra);
        }
    }
    for v in crd.spec.versions.iter_mut() {
        if let Some(schema) = v.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            let mut json = serde_json::to_value(&*schema).expect("a schema serialises");
            walk("", &mut json);
            *schema = serde_json::from_value(json).expect("a pruned schema is still a schema");
        }
    }
    crd
}

// Optional enums: without these, the derive adds `null` to the enum list.
pub fn dynamic_asn(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["internal", "external"],
        "description": "Use the peer's ASN whatever it is, as iBGP (internal) or eBGP (external)."})
}

pub fn advertise_vnis(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["Disabled", "All"]})
}

pub fn log_level(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["all", "debug", "info", "warn", "error", "none"]})
}

/// The values of a neighbor's allowAsIn, as upstream's enum lists them.
pub fn allow_as_in(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["", "none", "origin", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]})
}
