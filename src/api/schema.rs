//! Hand-written schema pieces: integer bounds, formats and CEL rules that the derive cannot express,
//! and the list of every CRD this project serves.

use kube::core::CustomResourceExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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

pub fn cidr(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "cidr"})
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

// CEL rules for "GLOBAL:LOCAL" values (route distinguishers and route targets), the effect of the
// anchor's six rules. `g`/`l` stand for the two parts; every rule but the first is guarded by
// "exactly two parts".
const TWO: &str = "self.split(':').size() != 2";
const G: &str = "self.split(':')[0]";
const L: &str = "self.split(':')[1]";

fn rd_rules(what: &str, wildcard: bool) -> serde_json::Value {
    let num = |s: &str| format!("{s}.matches('^[0-9]+$')");
    let ip = |s: &str| format!("{s}.matches('^[0-9]{{1,3}}\\\\.[0-9]{{1,3}}\\\\.[0-9]{{1,3}}\\\\.[0-9]{{1,3}}$')");
    let global_ok = if wildcard {
        format!("{G} == '*' || {} || {}", ip(G), num(G))
    } else {
        format!("{} || {}", ip(G), num(G))
    };
    let global_msg = if wildcard {
        format!("{what} global administrator must be either '*', an IPv4 address, or a number")
    } else {
        format!("{what} global administrator must be either an IPv4 address or a number")
    };
    let mut rules = vec![
        serde_json::json!({"rule": "self.split(':').size() == 2",
            "message": format!("{what} must have exactly one ':' (GLOBAL:LOCAL)")}),
        serde_json::json!({"rule": format!("{TWO} || {global_ok}"), "message": global_msg}),
        serde_json::json!({"rule": format!("{TWO} || {}", num(L)),
            "message": format!("{what} local administrator must be a number")}),
        serde_json::json!({"rule": format!("{TWO} || !{G}.contains('.') || !{} || int({L}) <= 65535", num(L)),
            "message": format!("{what} with an IPv4 global administrator needs a local administrator <= 65535")}),
        serde_json::json!({"rule": format!("{TWO} || !{} || !{} || int({G}) <= 65535 || int({L}) <= 65535", num(G), num(L)),
            "message": format!("{what} with a 4-byte ASN global administrator needs a local administrator <= 65535")}),
        serde_json::json!({"rule": format!("{TWO} || !{} || !{} || int({G}) > 65535 || int({L}) <= 4294967295", num(G), num(L)),
            "message": format!("{what} with a 2-byte ASN global administrator needs a local administrator <= 4294967295")}),
    ];
    if wildcard {
        rules.push(serde_json::json!({"rule": format!("{TWO} || {G} != '*' || !{} || int({L}) <= 4294967295", num(L)),
            "message": format!("{what} with a wildcard global administrator needs a local administrator <= 4294967295")}));
    }
    serde_json::Value::Array(rules)
}

pub fn route_distinguisher(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "maxLength": 21, "x-kubernetes-validations": rd_rules("RD", false)})
}

pub fn import_rts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 100,
        "items": {"type": "string", "maxLength": 21, "x-kubernetes-validations": rd_rules("RT", true)}})
}

pub fn export_rts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 100,
        "items": {"type": "string", "maxLength": 21, "x-kubernetes-validations": rd_rules("RT", false)}})
}

/// Every CRD this project serves, in a fixed order, with the file name it is committed under.
pub fn all_crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("frrk8s.metallb.io_frrconfigurations.yaml", super::FRRConfiguration::crd()),
        ("frrk8s.metallb.io_frrnodestates.yaml", super::FRRNodeState::crd()),
        ("frrk8s.metallb.io_bgpsessionstates.yaml", super::BGPSessionState::crd()),
        ("frrk8s.metallb.io_frrk8sconfigurations.yaml", super::FRRK8sConfiguration::crd()),
    ]
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
