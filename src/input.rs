//! Reading objects from YAML documents (files, folders, `kubectl get -o yaml` output, `kind: List`).
//! Pure: takes text, returns typed objects and errors that name the document and the field.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret};

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
    /// Things the user should know that stop nothing (unknown fields).
    pub warnings: Vec<String>,
}

impl Objects {
    pub fn extend(&mut self, other: Objects) {
        self.configs.extend(other.configs);
        self.secrets.extend(other.secrets);
        self.nodes.extend(other.nodes);
        self.settings.extend(other.settings);
        self.ignored.extend(other.ignored);
        self.warnings.extend(other.warnings);
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
    (shown(&kind), shown(&id))
}

/// A value from the input as it may appear in a message: printable, and short.
fn shown(s: &str) -> String {
    crate::core::error::excerpt(&crate::core::error::printable(s)).into_owned()
}

/// Fields whose values are secrets: never part of a message.
fn secret_path(kind: &str, path: &str) -> bool {
    path.to_ascii_lowercase().contains("password") || (kind == "Secret" && (path.starts_with("data") || path.starts_with("stringData")))
}

fn typed<T: serde::de::DeserializeOwned>(doc: serde_yaml::Value, source: &str, kind: &str, id: &str, warnings: &mut Vec<String>) -> Result<T, Box<Error>> {
    let mut unknown = Vec::new();
    let result = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(doc, &mut |path: serde_ignored::Path| unknown.push(path.to_string())));
    // the custom resource types do not keep these two (the document's kind was checked)
    for path in unknown.into_iter().filter(|p| p != "apiVersion" && p != "kind") {
        // as kubectl's field validation warns
        warnings.push(format!("{source}: {kind} {id}: unknown field {:?} ignored", shown(&path)));
    }
    result.map_err(|e| {
        let path = e.path().to_string();
        let mut inner = e.into_inner().to_string();
        if secret_path(kind, &path) {
            // "invalid type: integer `123456`, expected a string": keep only what was expected
            inner = match inner.split_once(", expected") {
                Some((_, expected)) => format!("invalid value (not shown), expected{expected}"),
                None => "invalid value (not shown)".to_string(),
            };
        }
        let inner = crate::core::error::excerpt(&inner).into_owned();
        Box::new(Error::Document {
            source_name: format!("{source}: {kind} {id}"),
            reason: if path == "." { inner } else { format!("{}: {inner}", shown(&path)) },
        })
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
            if let Ok(c) = typed::<FRRConfiguration>(doc, source, &kind, &id, &mut out.warnings).map_err(|e| errors.push(*e)) {
                if c.metadata.name.as_deref().unwrap_or("").is_empty() {
                    errors.push(Error::Document { source_name: format!("{source}: FRRConfiguration"), reason: "metadata.name is missing".into() });
                } else {
                    out.configs.push(c);
                }
            }
        }
        ("FRRK8sConfiguration", true) => {
            if let Ok(c) = typed::<FRRK8sConfiguration>(doc, source, &kind, &id, &mut out.warnings).map_err(|e| errors.push(*e)) {
                out.settings.push(c);
            }
        }
        ("Secret", false) if api_version == "v1" => {
            if let Ok(s) = typed::<Secret>(doc, source, &kind, &id, &mut out.warnings).map_err(|e| errors.push(*e)) {
                out.secrets.push(s);
            }
        }
        ("Node", false) if api_version == "v1" => {
            if let Ok(n) = typed::<Node>(doc, source, &kind, &id, &mut out.warnings).map_err(|e| errors.push(*e)) {
                out.nodes.push(n);
            }
        }
        _ => out.ignored.push(format!("{source}: {} {kind} {id}", shown(&api_version))),
    }
}

/// How deep YAML collections may nest. FRRConfigurations need about 10 levels; the parser's
/// own limit (128) is only reached after work that grows with the square of the depth
/// (100,000 `[` took minutes), so deeper flow nesting is refused before parsing.
pub const MAX_NESTING: usize = 64;

/// How much one document may grow to when its aliases are expanded, besides its own size
/// (scalar bytes, plus 32 per node): a 1 MB scalar aliased 1,000 times would be 1 GB.
pub const EXPANSION_ALLOWANCE: usize = 8 << 20;

/// Parses every YAML document of `text`. `source` names the text in messages (a file name).
pub fn parse_documents(text: &str, source: &str) -> (Objects, Vec<Error>) {
    let mut out = Objects::default();
    let mut errors = Vec::new();
    if let Some(line) = flow_nesting_beyond(text, MAX_NESTING) {
        errors.push(Error::Document { source_name: shown(source), reason: format!("line {line}: collections nested more than {MAX_NESTING} deep") });
        return (out, errors);
    }
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let name = format!("{} document {}", shown(source), i + 1);
        let mut budget = bounded::Budget(text.len().saturating_mul(2).saturating_add(EXPANSION_ALLOWANCE));
        match serde::de::DeserializeSeed::deserialize(bounded::Seed(&mut budget), de) {
            Ok(doc) => add(&mut out, &mut errors, doc, &name),
            Err(e) => {
                let reason = crate::core::error::excerpt(&e.to_string()).into_owned();
                errors.push(Error::Document { source_name: name, reason: format!("not valid YAML: {reason}") });
                // the stream cannot be resynchronised after a syntax error
                break;
            }
        }
    }
    (out, errors)
}

/// The line where `[`/`{` nesting first goes deeper than `max`, outside quotes and comments
/// (a cheap scan; the parser checks the syntax).
fn flow_nesting_beyond(text: &str, max: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\n') => {
                line += 1;
            }
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '#') if prev.is_whitespace() => {
                // a comment runs to the end of the line
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            (None, '"' | '\'') if depth > 0 || prev.is_whitespace() || matches!(prev, ':' | '-' | ',' | '[' | '{') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    None
}

/// Building a YAML value with a budget: aliases are expanded as they are met, and the work
/// stops with an error once the document has grown beyond its budget.
mod bounded {
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_yaml::{Mapping, Value};

    pub struct Budget(pub usize);

    impl Budget {
        fn spend<E: de::Error>(&mut self, n: usize) -> Result<(), E> {
            match self.0.checked_sub(n.saturating_add(32)) {
                Some(left) => {
                    self.0 = left;
                    Ok(())
                }
                None => Err(E::custom("the document is too large once its aliases are expanded")),
            }
        }
    }

    pub struct Seed<'a>(pub &'a mut Budget);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a YAML value")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            self.0.spend(0)?;
            Ok(Value::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            self.0.spend(0)?;
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            self.0.spend(0)?;
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            self.0.spend(0)?;
            Ok(Value::Number(v.into()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            self.0.spend(v.len())?;
            Ok(Value::String(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            self.0.spend(0)?;
            Ok(Value::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Value, E> {
            self.visit_unit()
        }
        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            self.0.spend(0)?;
            let mut v = Vec::new();
            while let Some(item) = seq.next_element_seed(Seed(&mut *self.0))? {
                v.push(item);
            }
            Ok(Value::Sequence(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            self.0.spend(0)?;
            let mut m = Mapping::new();
            while let Some(k) = map.next_key_seed(Seed(&mut *self.0))? {
                let v = map.next_value_seed(Seed(&mut *self.0))?;
                m.insert(k, v);
            }
            Ok(Value::Mapping(m))
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
            Err(de::Error::custom("YAML tags are not supported"))
        }
    }
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
