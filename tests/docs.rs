//! The documents stay true where a test can tell: every flag the binary accepts is in the
//! command-line, operating or webhook guide; every environment variable the agent reads is in
//! the operating guide; every metric the agent exports is in its metrics table with its type;
//! every relative link resolves; and the README stays short.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_frr-composer")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a `--help` lists (its "Commands:" section), without `help`.
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// Every command path of the binary: `render`, ..., `lab run`, `lab up`, ...
fn commands() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for c in subcommands(&help(&[])) {
        let nested = subcommands(&help(&[&c]));
        if nested.is_empty() {
            out.push(vec![c]);
        } else {
            out.extend(nested.into_iter().map(|n| vec![c.clone(), n]));
        }
    }
    out
}

/// The long flags (`--name`) and environment variables (`[env: NAME=]`) of one `--help`.
fn flags_and_env(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut flags, mut env) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('-') {
            // the option column only (the description starts after two spaces)
            let column = t.split("  ").next().unwrap_or("");
            for w in column.split([' ', ',', '=', '[', '<']) {
                if w.starts_with("--") && w.len() > 2 && w != "--help" && w != "--version" {
                    flags.insert(w.to_string());
                }
            }
        }
        if let Some(i) = line.find("[env: ") {
            let name: String = line[i + 6..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            env.insert(name);
        }
    }
    (flags, env)
}

#[test]
fn every_flag_and_environment_variable_is_documented() {
    let docs = [read("docs/cli.md"), read("docs/operating.md"), read("docs/webhook.md")].join("\n");
    let operating = read("docs/operating.md");
    let cmds = commands();
    assert!(cmds.len() >= 10, "{cmds:?}");
    let mut missing = Vec::new();
    let mut env_missing = Vec::new();
    let mut seen = 0;
    for c in &cmds {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let (flags, env) = flags_and_env(&help(&args));
        seen += flags.len();
        for f in flags {
            // the flag as written in a table or a usage line: `--flag` followed by a non-name character
            let documented = docs.match_indices(&f).any(|(i, _)| !docs[i + f.len()..].starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '-'));
            if !documented {
                missing.push(format!("{} {f}", c.join(" ")));
            }
        }
        for e in env {
            if !operating.contains(&format!("`{e}`")) {
                env_missing.push(format!("{} {e}", c.join(" ")));
            }
        }
    }
    assert!(seen > 50, "only {seen} flags found: the --help format changed?");
    assert!(missing.is_empty(), "flags not in docs/cli.md, docs/operating.md or docs/webhook.md:\n{}", missing.join("\n"));
    assert!(env_missing.is_empty(), "environment variables not in docs/operating.md:\n{}", env_missing.join("\n"));
}

/// `name -> type` of the rows of the metrics table in docs/operating.md.
fn documented_metrics() -> Vec<(String, String)> {
    let text = read("docs/operating.md");
    let table = text.split("### Metrics").nth(1).expect("a Metrics section").split("\n### ").next().unwrap().to_string();
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[1].to_string())
        })
        .collect()
}

#[test]
fn every_metric_is_in_the_metrics_table_with_its_type() {
    use frr_composer::agent::metrics::{BfdCounters, Metrics};
    let m = Metrics::new();
    {
        // FRR's version, one BGP session and one BFD peer, so that FRR's families are exported too
        let mut s = m.frr.0.lock().unwrap();
        s.version = Some("10.7.1".into());
        s.neighbors = frr_composer::frr::state::parse_bgp_neighbors(&serde_json::json!({"default": {"192.0.2.1": {"bgpState": "Established"}}}));
        s.bfd = frr_composer::frr::state::parse_bfd_peers(&serde_json::json!([{"peer": "192.0.2.1", "status": "up"}]));
        let keys = [
            "control_packet_input",
            "control_packet_output",
            "echo_packet_input",
            "echo_packet_output",
            "session_up_events",
            "session_down_events",
            "zebra_notifications",
        ];
        s.bfd_counters = vec![BfdCounters { vrf: "default".into(), peer: "192.0.2.1".into(), values: keys.iter().map(|k| (*k, 1)).collect() }];
    }
    let text = m.encode();
    let exported: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect();
    assert!(exported.len() > 25, "{text}");
    let documented = documented_metrics();
    let mut problems = Vec::new();
    for (name, kind) in &exported {
        match documented.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("{name} ({kind}) is not in the table")),
            Some((_, k)) if k != kind => problems.push(format!("{name} is a {kind}, the table says {k}")),
            _ => {}
        }
    }
    for (name, _) in &documented {
        if !exported.iter().any(|(n, _)| n == name) {
            problems.push(format!("{name} is in the table but not exported"));
        }
    }
    assert!(problems.is_empty(), "docs/operating.md's metrics table:\n{}", problems.join("\n"));
}

fn markdown_files() -> Vec<PathBuf> {
    let mut v = vec![root().join("README.md"), root().join("deploy/chart/README.md")];
    v.extend(std::fs::read_dir(root().join("docs")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")));
    v
}

#[test]
fn relative_links_resolve() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|c| *c != ')').collect();
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if !file.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_short_and_points_at_the_docs() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 200, "README.md has {lines} lines; the details belong in docs/");
    for doc in ["operating", "merging", "cli", "webhook", "architecture", "testing", "measurements"] {
        assert!(readme.contains(&format!("docs/{doc}.md")), "README.md does not link docs/{doc}.md");
    }
    // the two commands
    assert!(readme.contains("cargo run --release -- render") && readme.contains(".ci/test"));
}
