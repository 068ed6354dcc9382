//! Errors of the core: every one names the object, the field and the reason; conflicts name both
//! objects, the router, the neighbor, the field and both values.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// `namespace/name` of an object. Cheap to clone: it is recorded on every item it contributes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjRef {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjRef {
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        ObjRef { namespace: Arc::from(namespace.as_ref()), name: Arc::from(name.as_ref()) }
    }
}

impl fmt::Display for ObjRef {
    /// `namespace/name`; quoted with escapes when either part is not a plain Kubernetes name
    /// (offline input may hold anything), so that no control character or escape sequence
    /// reaches a terminal, a log or frr.conf.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        // a valid namespace and name are at most 63 + 1 + 253 characters
        if plain(&self.namespace) && plain(&self.name) && self.namespace.len() + self.name.len() < 320 {
            write!(f, "{}/{}", self.namespace, self.name)
        } else {
            let full = format!("{}/{}", self.namespace, self.name);
            let cut = if full.len() > 100 { format!("{}...", &full[..full.char_indices().nth(100).map_or(full.len(), |(i, _)| i)]) } else { full };
            write!(f, "{cut:?}")
        }
    }
}

/// Where a conflict happened.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Scope {
    /// VRF of the router ("" is the default VRF); `None` for node-wide items (BFD profiles).
    pub vrf: Option<String>,
    /// Neighbor (address or interface), when the conflict is about one.
    pub neighbor: Option<String>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vrf.as_deref() {
            None => write!(f, "node-wide settings")?,
            Some("") => write!(f, "router in vrf \"default\"")?,
            Some(vrf) => write!(f, "router in vrf {vrf:?}")?,
        }
        if let Some(n) = &self.neighbor {
            write!(f, ", neighbor {n}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, thiserror::Error)]
pub enum Error {
    /// A value in one object is invalid.
    #[error("FRRConfiguration {object}: {field}: {reason}")]
    Invalid { object: ObjRef, field: String, reason: String },
    /// A referenced Secret is missing or unusable. The agent retries when Secrets change.
    #[error("FRRConfiguration {object}: {field}: {reason}")]
    Secret { object: ObjRef, field: String, reason: String },
    /// Two objects ask for different values of a field that can only have one.
    #[error("conflict between FRRConfiguration {first} and {second}: {scope}: {field}: {first_value} in {first} but {second_value} in {second}")]
    Conflict { first: ObjRef, second: ObjRef, scope: Scope, field: String, first_value: String, second_value: String },
    /// A rule on the merged result (EVPN, unique VNIs) is broken; `objects` contributed to it.
    #[error("{scope}: {reason} (from FRRConfiguration {})", join(.objects))]
    Merged { objects: Vec<ObjRef>, scope: Scope, reason: String },
    /// An input document could not be read.
    #[error("{source_name}: {reason}")]
    Document { source_name: String, reason: String },
    /// A setting of the agent or of the command line.
    #[error("{setting}: {reason}")]
    Setting { setting: String, reason: String },
}

fn join(objects: &[ObjRef]) -> String {
    objects.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
}

/// How much of a message an error keeps: values from the input are quoted in reasons, and a
/// 1 MB value must not become a 1 MB message (nor 1,000 of them).
pub const MAX_REASON: usize = 300;

/// A name as it can be shown on a terminal: as it is when it is printable, else quoted with
/// escapes (control characters and escape sequences are never written raw).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(|c| !c.is_control() && c != '"') {
        s.into()
    } else {
        format!("{s:?}").into()
    }
}

/// `s`, or its first `MAX_REASON` bytes and how much was left out; control characters (from
/// input values echoed by a parser) are escaped, so that a message is one line of text.
pub fn excerpt(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(|c| c.is_control()) {
        let escaped: String = s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
        return excerpt(&escaped).into_owned().into();
    }
    if s.len() <= MAX_REASON {
        return s.into();
    }
    let mut end = MAX_REASON;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &s[..end], s.len() - end).into()
}

impl Error {
    pub fn invalid(object: &ObjRef, field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid { object: object.clone(), field: excerpt(&field.into()).into_owned(), reason: excerpt(&reason.into()).into_owned() }
    }

    /// Objects this error is about (for per-object status).
    pub fn objects(&self) -> Vec<&ObjRef> {
        match self {
            Error::Invalid { object, .. } | Error::Secret { object, .. } => vec![object],
            Error::Conflict { first, second, .. } => vec![first, second],
            Error::Merged { objects, .. } => objects.iter().collect(),
            Error::Document { .. } | Error::Setting { .. } => vec![],
        }
    }

    /// True when waiting for another object (a Secret) may fix it without a spec change.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Secret { .. })
    }
}

/// All errors of one composition, sorted and deduplicated so that their order never depends on
/// the order of the inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    pub fn new(mut errors: Vec<Error>) -> Errors {
        errors.sort();
        errors.dedup();
        Errors(errors)
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}
