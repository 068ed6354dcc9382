//! `frr-composer render`: YAML files in, frr.conf out; `--check`/`--update` for golden files in CI.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::core::{self, Composition, Error, Errors, Settings, Snapshot};
use crate::input::Objects;
pub use crate::settings::LogLevelArg;

/// How the node is described and what the agent's settings are; shared by `render` and `apply`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NodeArgs {
    /// Take the node's labels (and addresses) from the Node object of this name in the inputs.
    #[arg(long)]
    pub node: Option<String>,
    /// Node labels as k=v pairs, comma-separated (instead of, or on top of, --node).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Namespace the agent reads (default: the namespace of the FRRConfigurations in the inputs).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Hostname written into frr.conf (default: the node name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// CIDRs refused from every neighbor, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub always_block: Vec<String>,
    /// FRR log level (default: FRRK8sConfiguration `config` in the inputs, else info).
    #[arg(long, value_enum)]
    pub log_level: Option<LogLevelArg>,
    /// The node has no IPv4 address: routers without an id get one derived from the hostname.
    #[arg(long)]
    pub ipv6_only: bool,
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct RenderArgs {
    /// YAML files or folders (FRRConfiguration, Secret, Node, FRRK8sConfiguration, List);
    /// `-` reads stdin. Without any, the embedded field example (metallb-wk3) is rendered.
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Compare with FILE: print a unified diff and exit 1 on any difference.
    #[arg(long, value_name = "FILE", conflicts_with = "update")]
    pub check: Option<PathBuf>,
    /// Write the result to FILE (only when the inputs are valid).
    #[arg(long, value_name = "FILE")]
    pub update: Option<PathBuf>,
    /// Print which FRRConfiguration(s) contributed each router, neighbor and prefix.
    #[arg(long)]
    pub explain: bool,
}

/// What the composition needs besides the objects, worked out from the arguments and inputs.
pub fn settings_for(args: &NodeArgs, objects: &Objects, notices: &mut Vec<String>) -> Result<(Settings, BTreeMap<String, String>), Vec<Error>> {
    let mut errors = Vec::new();
    let setting = |s: &str, r: String| Error::Setting { setting: s.to_string(), reason: r };
    let namespace = match &args.namespace {
        Some(ns) => ns.clone(),
        None => {
            let namespaces: std::collections::BTreeSet<&str> = objects.configs.iter().map(|c| c.metadata.namespace.as_deref().unwrap_or("")).collect();
            match namespaces.len() {
                0 => String::new(),
                1 => namespaces.into_iter().next().unwrap_or_default().to_string(),
                _ => {
                    errors.push(setting(
                        "--namespace",
                        format!(
                            "the inputs hold FRRConfigurations of several namespaces ({}); choose one",
                            namespaces.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                    String::new()
                }
            }
        }
    };
    let node = match &args.node {
        Some(name) => match objects.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)) {
            Some(n) => Some(n),
            None => {
                if args.labels.is_empty() {
                    errors.push(setting("--node", format!("no Node named {name:?} in the inputs (give its labels with --labels)")));
                }
                None
            }
        },
        None if objects.nodes.len() == 1 && args.labels.is_empty() => objects.nodes.first(),
        None => None,
    };
    let mut labels: BTreeMap<String, String> = node.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
    for kv in &args.labels {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                labels.insert(k.to_string(), v.to_string());
            }
            _ => errors.push(setting("--labels", format!("{kv:?} is not key=value"))),
        }
    }
    if node.is_none() && args.labels.is_empty() && objects.configs.iter().any(|c| c.spec.node_selector.is_some()) {
        notices.push("no node given (--node or --labels): the node has no labels".into());
    }
    let node_name = args.node.clone().or_else(|| node.and_then(|n| n.metadata.name.clone()));
    let hostname = args.hostname.clone().or(node_name).unwrap_or_else(|| "frr-composer".into());
    let mut always_block: Vec<IpNet> = Vec::new();
    for c in args.always_block.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        match core::values::parse_prefix(c) {
            Ok(n) => always_block.push(n),
            Err(e) => errors.push(setting("--always-block", e)),
        }
    }
    let log_level = match args.log_level {
        Some(l) => l.into(),
        None => objects
            .settings
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some("config") && s.metadata.namespace.as_deref().unwrap_or("") == namespace)
            .and_then(|s| s.spec.log_level)
            .unwrap_or_default(),
    };
    // Node addresses, when the inputs carry them, tell whether the node has IPv4.
    let addresses: Vec<IpAddr> = node
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.addresses.as_ref())
        .map(|a| a.iter().filter_map(|a| a.address.parse().ok()).collect())
        .unwrap_or_default();
    let node_has_ipv4 = !args.ipv6_only && (addresses.is_empty() || addresses.iter().any(|a| a.is_ipv4() && !a.is_loopback()));
    if errors.is_empty() {
        Ok((Settings { namespace, hostname, log_level, always_block, node_has_ipv4 }, labels))
    } else {
        Err(errors)
    }
}

/// Composes the inputs for the node; notices (ignored objects, warnings) are appended.
pub fn compose_objects(args: &NodeArgs, objects: &Objects, notices: &mut Vec<String>) -> Result<Composition, Errors> {
    notices.extend(objects.warnings.iter().map(|w| format!("warning: {w}")));
    let (settings, labels) = settings_for(args, objects, notices).map_err(Errors::new)?;
    let secrets = objects.secrets_in(&settings.namespace);
    let c = core::compose(&settings, Snapshot { node_labels: &labels, configs: &objects.configs, secrets: &secrets })?;
    for o in &c.other_namespace {
        notices.push(format!("ignored FRRConfiguration {o}: not in namespace {:?}", settings.namespace));
    }
    for o in &c.not_selected {
        notices.push(format!("FRRConfiguration {o} does not select this node"));
    }
    notices.extend(c.model.warnings.iter().map(|w| format!("warning: {w}")));
    Ok(c)
}

/// Runs `render`; returns the exit code (0 ok, 1 `--check` found a difference, 2 invalid input).
pub fn run(args: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (objects, load_errors) = super::load_inputs(&args.inputs);
    if args.inputs.is_empty() {
        let _ = writeln!(err, "frr-composer: no input given; rendering the embedded field example (metallb-wk3)");
    }
    let mut notices: Vec<String> = objects.ignored.iter().map(|i| format!("ignored {i}")).collect();
    let composed = if load_errors.is_empty() { compose_objects(&args.node, &objects, &mut notices) } else { Err(Errors::new(load_errors)) };
    for n in &notices {
        let _ = writeln!(err, "frr-composer: {n}");
    }
    let composition = match composed {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                let _ = writeln!(err, "error: {e}");
            }
            let _ = writeln!(err, "frr-composer: {} error(s); nothing written", errors.0.len());
            return 2;
        }
    };
    if args.explain {
        let _ = out.write_all(crate::render::explain(&composition.model).as_bytes());
        return 0;
    }
    let text = match crate::render::render(&composition.model) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    if let Some(path) = &args.check {
        let expected = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: cannot read {}: {e}", printable(&path.display().to_string()));
                return 2;
            }
        };
        if expected == text {
            return 0;
        }
        let _ = out.write_all(redacted_diff(&expected, &text, &path.display().to_string()).as_bytes());
        return 1;
    }
    if let Some(path) = &args.update {
        if let Err(e) = std::fs::write(path, &text) {
            let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
            return 2;
        }
        return 0;
    }
    let _ = out.write_all(text.as_bytes());
    0
}

/// A unified diff (3 lines of context) in which every line, context included, is redacted:
/// a changed password shows as a changed line, never its old or new value.
pub fn redacted_diff(expected: &str, rendered: &str, name: &str) -> String {
    use similar::ChangeTag;
    let diff = similar::TextDiff::from_lines(expected, rendered);
    let mut s = format!("--- {}\n+++ rendered\n", printable(name));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        s.push_str(&format!("{}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let line = change.value();
            s.push(sign);
            s.push_str(&crate::frr::redact_line(line.strip_suffix('\n').unwrap_or(line)));
            s.push('\n');
        }
    }
    s
}

/// A name as it can be shown on a terminal: as it is when it is printable, else quoted with
/// escapes (control characters and escape sequences are never written raw).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(|c| !c.is_control() && c != '"') {
        s.into()
    } else {
        format!("{s:?}").into()
    }
}
