//! Reading objects from YAML documents (files, folders, `kubectl get -o yaml` output, `kind: List`).
//! Pure: takes text, returns typed objects and errors that name the document and the field.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret, Service};

use crate::api::{BGPSessionState, FRRConfiguration, FRRK8sConfiguration, FRRNodeState};
use crate::core::{Error, SecretEntry};

#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub configs: Vec<FRRConfiguration>,
    pub secrets: Vec<Secret>,
    pub nodes: Vec<Node>,
    pub settings: Vec<FRRK8sConfiguration>,
    /// The sessions agents published (`kubectl get bgpsessionstates -o yaml`), for `peers`.
    pub sessions: Vec<BGPSessionState>,
    /// What the agents report of their nodes (`kubectl get frrnodestates -o yaml`), for `why`.
    pub node_states: Vec<FRRNodeState>,
    /// Services (`kubectl get services -o yaml`), for `routes` to name a LoadBalancer address's.
    pub services: Vec<Service>,
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
        self.sessions.extend(other.sessions);
        self.services.extend(other.services);
        self.node_states.extend(other.node_states);
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

/// How many unknown-field warnings one file may produce; past it they are counted, not listed
/// (aliases can repeat one unknown field a million times).
pub const MAX_WARNINGS: usize = 100;

/// The unknown-field warnings of one file: the first [`MAX_WARNINGS`], and a count of the rest.
#[derive(Default)]
struct Warnings {
    listed: Vec<String>,
    more: usize,
}

impl Warnings {
    fn push(&mut self, warning: impl FnOnce() -> String) {
        if self.listed.len() < MAX_WARNINGS {
            self.listed.push(warning());
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self, source: &str) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("{source}: {} more unknown fields ignored, not listed", self.more));
        }
        self.listed
    }
}

/// A deserializer's reason for refusing the field at `path`, without the value when the field
/// holds a secret: "invalid type: integer `123456`, expected a string" keeps only what was
/// expected. Offline inputs and the webhook say it the same way.
pub fn field_reason(kind: &str, path: &str, reason: String) -> String {
    if !secret_path(kind, path) {
        return reason;
    }
    match reason.split_once(", expected") {
        Some((_, expected)) => format!("invalid value (not shown), expected{expected}"),
        None => "invalid value (not shown)".to_string(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(doc: serde_yaml::Value, source: &str, kind: &str, id: &str, warnings: &mut Warnings) -> Result<T, Box<Error>> {
    let (mut unknown, mut more) = (Vec::new(), 0usize);
    let result = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(doc, &mut |path: serde_ignored::Path| {
        let path = path.to_string();
        // the custom resource types do not keep these two (the document's kind was checked)
        if path == "apiVersion" || path == "kind" {
        } else if unknown.len() < MAX_WARNINGS {
            unknown.push(path);
        } else {
            more += 1;
        }
    }));
    for path in unknown {
        // as kubectl's field validation warns
        warnings.push(|| format!("{source}: {kind} {id}: unknown field {:?} ignored", shown(&path)));
    }
    warnings.more += more;
    result.map_err(|e| {
        let path = e.path().to_string();
        let inner = crate::core::error::excerpt(&field_reason(kind, &path, e.into_inner().to_string())).into_owned();
        Box::new(Error::Document {
            source_name: format!("{source}: {kind} {id}"),
            reason: if path == "." { inner } else { format!("{}: {inner}", shown(&path)) },
        })
    })
}

fn add(out: &mut Objects, errors: &mut Vec<Error>, warnings: &mut Warnings, doc: serde_yaml::Value, source: &str) {
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
                    add(out, errors, warnings, item.clone(), &format!("{source} items[{i}]"));
                }
            }
        }
        ("FRRConfiguration", true) => {
            if let Ok(c) = typed::<FRRConfiguration>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                if c.metadata.name.as_deref().unwrap_or("").is_empty() {
                    errors.push(Error::Document { source_name: format!("{source}: FRRConfiguration"), reason: "metadata.name is missing".into() });
                } else {
                    out.configs.push(c);
                }
            }
        }
        ("FRRK8sConfiguration", true) => {
            if let Ok(c) = typed::<FRRK8sConfiguration>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                out.settings.push(c);
            }
        }
        ("BGPSessionState", true) => {
            if let Ok(b) = typed::<BGPSessionState>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                out.sessions.push(b);
            }
        }
        ("FRRNodeState", true) => {
            if let Ok(n) = typed::<FRRNodeState>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                out.node_states.push(n);
            }
        }
        ("Secret", false) if api_version == "v1" => {
            if let Ok(s) = typed::<Secret>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                out.secrets.push(s);
            }
        }
        ("Service", false) if api_version == "v1" => {
            if let Ok(s) = typed::<Service>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
                out.services.push(s);
            }
        }
        ("Node", false) if api_version == "v1" => {
            if let Ok(n) = typed::<Node>(doc, source, &kind, &id, warnings).map_err(|e| errors.push(*e)) {
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

/// How much one file may grow to when its aliases are expanded, besides four times its own
/// size (scalar bytes, plus 32 per node): a 1 MB scalar aliased 1,000 times would be 1 GB.
/// The budget is the file's, shared by all its documents.
pub const EXPANSION_ALLOWANCE: usize = 8 << 20;

/// The expansion budget of a text of `len` bytes.
fn budget_for(len: usize) -> bounded::Budget {
    bounded::Budget::new(len.saturating_mul(4).saturating_add(EXPANSION_ALLOWANCE))
}

/// Parses every YAML document of `text`. `source` names the text in messages (a file name).
pub fn parse_documents(text: &str, source: &str) -> (Objects, Vec<Error>) {
    let mut out = Objects::default();
    let mut errors = Vec::new();
    if let Some(line) = flow_nesting_beyond(text, MAX_NESTING) {
        errors.push(Error::Document { source_name: shown(source), reason: format!("line {line}: collections nested more than {MAX_NESTING} deep") });
        return (out, errors);
    }
    let mut budget = budget_for(text.len());
    let mut warnings = Warnings::default();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let name = format!("{} document {}", shown(source), i + 1);
        match serde::de::DeserializeSeed::deserialize(bounded::Seed(&mut budget), de) {
            Ok(doc) => add(&mut out, &mut errors, &mut warnings, doc, &name),
            Err(e) => {
                let reason = crate::core::error::excerpt(&e.to_string()).into_owned();
                errors.push(Error::Document { source_name: name, reason: format!("not valid YAML: {reason}") });
                // the stream cannot be resynchronised after a syntax error (and a spent budget
                // stays spent)
                break;
            }
        }
    }
    out.warnings = warnings.finish(&shown(source));
    (out, errors)
}

/// One YAML value (a single document) read with the same bounds as the inputs: nesting depth
/// and the expansion budget. For files that are not Kubernetes objects (lab expectations).
pub fn bounded_value(text: &str, source: &str) -> Result<serde_yaml::Value, String> {
    if let Some(line) = flow_nesting_beyond(text, MAX_NESTING) {
        return Err(Error::Document { source_name: shown(source), reason: format!("line {line}: collections nested more than {MAX_NESTING} deep") }.to_string());
    }
    let mut budget = budget_for(text.len());
    let de = serde_yaml::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(bounded::Seed(&mut budget), de).map_err(|e| {
        let reason = crate::core::error::excerpt(&e.to_string()).into_owned();
        Error::Document { source_name: shown(source), reason: format!("not valid YAML: {reason}") }.to_string()
    })
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

    /// What a file may still grow to: every scalar's bytes plus 32 bytes a node, with every
    /// alias expanded where it is used.
    pub struct Budget {
        left: usize,
        limit: usize,
    }

    impl Budget {
        pub fn new(limit: usize) -> Budget {
            Budget { left: limit, limit }
        }

        fn spend<E: de::Error>(&mut self, n: usize) -> Result<(), E> {
            match self.left.checked_sub(n.saturating_add(32)) {
                Some(left) => {
                    self.left = left;
                    Ok(())
                }
                // a file with no alias at all can reach it too (a long flow list of short
                // values): say what was counted
                None => Err(E::custom(format!(
                    "the file is too large: its values, with every alias expanded and 32 bytes counted a node, pass {} bytes (4 times the file's size plus {} MiB); split it into several files",
                    self.limit,
                    super::EXPANSION_ALLOWANCE >> 20
                ))),
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

    const HEAD: &str = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\n";

    #[test]
    fn one_alias_budget_for_the_whole_file() {
        // each document alone is small beside the file; together they expand to 11 times the
        // file: with a budget per document every one of them passed
        let big = "x".repeat(60_000);
        let doc = format!("{HEAD}metadata: {{name: a, namespace: ns}}\nspec: {{}}\nx-a: &x \"{big}\"\nx-b: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n");
        let text = [doc.as_str(); 100].join("---\n");
        let (_, errors) = parse_documents(&text, "t.yaml");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let msg = errors[0].to_string();
        assert!(msg.contains("with every alias expanded") && msg.contains("split it"), "{msg}");
        // one such document is fine
        let (objs, errors) = parse_documents(&doc, "t.yaml");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(objs.configs.len(), 1);
    }

    #[test]
    fn a_long_file_without_aliases_is_not_too_large() {
        let prefixes: String = (0..100_000u32).map(|i| format!("        - 10.{}.{}.0/24\n", i >> 8 & 255, i & 255)).collect();
        let text = format!("{HEAD}metadata: {{name: a, namespace: ns}}\nspec:\n  bgp:\n    routers:\n    - asn: 64512\n      prefixes:\n{prefixes}");
        let (objs, errors) = parse_documents(&text, "t.yaml");
        assert!(errors.is_empty(), "{:?}", errors.first());
        assert_eq!(objs.configs[0].spec.bgp.routers[0].prefixes.len(), 100_000);
    }

    #[test]
    fn unknown_field_warnings_are_bounded_per_file() {
        // one unknown field, repeated by an alias 10,000 times in each of 3 documents
        let doc = format!(
            "{HEAD}metadata: {{name: a, namespace: ns}}\nspec:\n  bgp:\n    routers:\n    - &r {{asn: 64512, bogus: 1}}\n{}",
            "    - *r\n".repeat(10_000)
        );
        let text = [doc.as_str(); 3].join("---\n");
        let (objs, errors) = parse_documents(&text, "t.yaml");
        assert!(errors.is_empty(), "{:?}", errors.first());
        assert_eq!(objs.warnings.len(), MAX_WARNINGS + 1, "{:?}", &objs.warnings[..3]);
        assert!(objs.warnings[0].contains("unknown field \"spec.bgp.routers.0.bogus\" ignored"), "{}", objs.warnings[0]);
        let last = objs.warnings.last().unwrap();
        assert!(last.contains(&format!("{} more unknown fields ignored, not listed", 30_003 - MAX_WARNINGS)), "{last}");
    }

    #[test]
    fn bounded_value_keeps_the_input_bounds() {
        assert!(bounded_value("a: [1, 2]\n", "e.yaml").is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(bounded_value(&deep, "e.yaml").unwrap_err().contains("nested more than 64"));
        let bomb = format!("a: &a [{}]\nb: &b [{}]\nc: &c [{}]\nd: &d [{}]\n", "x,".repeat(50), "*a,".repeat(50), "*b,".repeat(50), "*c,".repeat(50));
        assert!(bounded_value(&bomb, "e.yaml").unwrap_err().contains("with every alias expanded"));
    }
}
