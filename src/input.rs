//! Reading objects from YAML documents (files, folders, `kubectl get -o yaml` output, `kind: List`).
//! Pure: takes text, returns typed objects and errors that name the document and the field.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret};
use serde::Deserialize;

use crate::api::{FRRConfiguration, FRRK8sConfiguration};
use crate::core::{Error, SecretEntry};

#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub configs: Vec<FRRConfiguration>,
    pub secrets: Vec<Secret>,
    pub nodes: Vec<Node>,
    pub settings: Vec<FRRK8sConfiguration>,
    /// Documents of other kinds, as `source: kind name`.
    pub ignored: Vec<String>,
}

impl Objects {
    pub fn extend(&mut self, other: Objects) {
        self.configs.extend(other.configs);
        self.secrets.extend(other.secrets);
        self.nodes.extend(other.nodes);
        self.settings.extend(other.settings);
        self.ignored.extend(other.ignored);
    }

    /// Secrets of `namespace` by name, as the core reads them.
    pub fn secrets_in(&self, namespace: &str) -> BTreeMap<String, SecretEntry> {
        secret_entries(self.secrets.iter().filter(|s| s.metadata.namespace.as_deref().unwrap_or("") == namespace))
    }
}

/// Converts Secrets into what the core needs (type and the `password` key), decoding
/// `stringData` too so that GitOps-style manifests work offline.
pub fn secret_entries<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> BTreeMap<String, SecretEntry> {
    let mut out = BTreeMap::new();
    for s in secrets {
        let Some(name) = s.metadata.name.clone() else { continue };
        let from_data = s.data.as_ref().and_then(|d| d.get("password")).map(|b| String::from_utf8(b.0.clone()).map_err(|_| ()));
        let from_string = s.string_data.as_ref().and_then(|d| d.get("password")).map(|v| Ok(v.clone()));
        out.insert(name, SecretEntry { type_: s.type_.clone().unwrap_or_else(|| "Opaque".into()), password: from_string.or(from_data) });
    }
    out
}

fn describe(doc: &serde_yaml::Value) -> (String, String) {
    let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
    let meta = doc.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(|v| v.as_str()).unwrap_or("");
    let ns = meta.and_then(|m| m.get("namespace")).and_then(|v| v.as_str()).unwrap_or("");
    let id = if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") };
    (kind, id)
}

fn typed<T: serde::de::DeserializeOwned>(doc: serde_yaml::Value, source: &str, kind: &str, id: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        Error::Document { source_name: format!("{source}: {kind} {id}"), reason: if path == "." { inner } else { format!("{path}: {inner}") } }
    })
}

fn add(out: &mut Objects, errors: &mut Vec<Error>, doc: serde_yaml::Value, source: &str) {
    if doc.is_null() {
        return;
    }
    if !doc.is_mapping() {
        errors.push(Error::Document { source_name: source.into(), reason: "the document is not a mapping (an object)".into() });
        return;
    }
    let (kind, id) = describe(&doc);
    let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let ours = api_version == crate::api::API_VERSION;
    match (kind.as_str(), ours) {
        _ if kind.ends_with("List") && doc.get("items").is_some() => {
            if let Some(items) = doc.get("items").and_then(|i| i.as_sequence()) {
                for (i, item) in items.iter().enumerate() {
                    add(out, errors, item.clone(), &format!("{source} items[{i}]"));
                }
            }
        }
        ("FRRConfiguration", true) => {
            if let Ok(c) = typed::<FRRConfiguration>(doc, source, &kind, &id).map_err(|e| errors.push(e)) {
                if c.metadata.name.as_deref().unwrap_or("").is_empty() {
                    errors.push(Error::Document { source_name: format!("{source}: FRRConfiguration"), reason: "metadata.name is missing".into() });
                } else {
                    out.configs.push(c);
                }
            }
        }
        ("FRRK8sConfiguration", true) => {
            if let Ok(c) = typed::<FRRK8sConfiguration>(doc, source, &kind, &id).map_err(|e| errors.push(e)) {
                out.settings.push(c);
            }
        }
        ("Secret", false) if api_version == "v1" => {
            if let Ok(s) = typed::<Secret>(doc, source, &kind, &id).map_err(|e| errors.push(e)) {
                out.secrets.push(s);
            }
        }
        ("Node", false) if api_version == "v1" => {
            if let Ok(n) = typed::<Node>(doc, source, &kind, &id).map_err(|e| errors.push(e)) {
                out.nodes.push(n);
            }
        }
        _ => out.ignored.push(format!("{source}: {api_version} {kind} {id}")),
    }
}

/// Parses every YAML document of `text`. `source` names the text in messages (a file name).
pub fn parse_documents(text: &str, source: &str) -> (Objects, Vec<Error>) {
    let mut out = Objects::default();
    let mut errors = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let name = format!("{source} document {}", i + 1);
        match serde_yaml::Value::deserialize(de) {
            Ok(doc) => add(&mut out, &mut errors, doc, &name),
            Err(e) => {
                errors.push(Error::Document { source_name: name, reason: format!("not valid YAML: {e}") });
                // the stream cannot be resynchronised after a syntax error
                break;
            }
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_kinds() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: frrk8s.metallb.io/v1beta1
  kind: FRRConfiguration
  metadata: {name: a, namespace: ns}
  spec: {}
- apiVersion: v1
  kind: Secret
  metadata: {name: s, namespace: ns}
  type: kubernetes.io/basic-auth
  stringData: {password: pw}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"#;
        let (objs, errors) = parse_documents(text, "t.yaml");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(objs.configs.len(), 1);
        assert_eq!(objs.secrets_in("ns")["s"].password, Some(Ok("pw".to_string())));
        assert_eq!(objs.ignored.len(), 1);
    }

    #[test]
    fn typed_errors_name_the_field() {
        let text = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: a, namespace: ns}\nspec:\n  bgp:\n    routers:\n    - asn: notanumber\n";
        let (_, errors) = parse_documents(text, "t.yaml");
        let msg = errors[0].to_string();
        assert!(msg.contains("FRRConfiguration ns/a") && msg.contains("spec.bgp.routers[0].asn"), "{msg}");
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        let (_, errors) = parse_documents("a: [unclosed\n", "t.yaml");
        assert_eq!(errors.len(), 1);
        let (_, errors) = parse_documents("- just\n- a list\n", "t.yaml");
        assert_eq!(errors.len(), 1);
    }
}
