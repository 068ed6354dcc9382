//! FRR configuration text as a tree, and the difference between two trees as one vtysh batch.
//!
//! Both our rendered frr.conf and FRR's `show running-config` indent block contents, so a line
//! belongs to the closest less-indented block header above it. The difference between two
//! trees is computed per block: only changed lines are touched, blocks that stay are never torn
//! down, and a line whose value changed is replaced in place (`neighbor X timers ...`) instead of
//! being removed and added, which for some commands would reset or delete the neighbor.

use std::collections::BTreeSet;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub line: String,
    pub children: Vec<Node>,
}

/// Lines FRR prints that we neither render nor manage.
fn ignored(line: &str) -> bool {
    line.is_empty()
        || line.starts_with('!')
        || line.starts_with('#')
        || line == "end"
        || line.starts_with("frr version")
        || line.starts_with("frr defaults")
        || line == "service integrated-vtysh-config"
        || line.starts_with("Building configuration")
        || line.starts_with("Current configuration")
        || line == "exit"
        || line == "exit-address-family"
        || line == "exit-vni"
        || line == "exit-vrf"
}

/// Parses configuration text into a tree by indentation.
pub fn parse(text: &str) -> Vec<Node> {
    // (indent, node) stack of open blocks
    let mut root: Vec<Node> = Vec::new();
    let mut stack: Vec<(usize, Node)> = Vec::new();
    fn close_to(stack: &mut Vec<(usize, Node)>, root: &mut Vec<Node>, indent: Option<usize>) {
        while let Some((i, _)) = stack.last() {
            if indent.is_some_and(|ind| *i < ind) {
                break;
            }
            let (_, node) = stack.pop().expect("non-empty");
            match stack.last_mut() {
                Some((_, parent)) => parent.children.push(node),
                None => root.push(node),
            }
        }
    }
    for raw in text.lines() {
        let trimmed = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        // a line closes every open block at its indentation or deeper; `exit`-style lines
        // stand at the indentation of the block they close
        if ignored(trimmed) {
            if matches!(trimmed, "exit" | "exit-address-family" | "exit-vni" | "exit-vrf") {
                close_to(&mut stack, &mut root, Some(indent));
            }
            continue;
        }
        close_to(&mut stack, &mut root, Some(indent));
        // FRR prints a route target that is both imported and exported as `both`
        if let Some(rt) = trimmed.strip_prefix("route-target both ") {
            for dir in ["import", "export"] {
                stack.push((indent, Node { line: format!("route-target {dir} {}", rt.trim()), children: Vec::new() }));
                close_to(&mut stack, &mut root, Some(indent));
            }
            continue;
        }
        stack.push((indent, Node { line: normalise(trimmed), children: Vec::new() }));
    }
    close_to(&mut stack, &mut root, None);
    root
}

/// Collapses runs of spaces, so that alignment differences do not count as changes, and
/// spells well-known communities as numbers (FRR prints `65535:65282` as `no-advertise`).
fn normalise(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        // FRR prints the default TTL and the default stdout level
        ["neighbor", peer, "ebgp-multihop", "255"] => return format!("neighbor {peer} ebgp-multihop"),
        // FRR prints allowas-in's default count (3) as the bare command
        ["neighbor", peer, "allowas-in"] => return format!("neighbor {peer} allowas-in 3"),
        ["log", "stdout", "debugging"] => return "log stdout".into(),
        _ => {}
    }
    if words.len() > 2 && words[0] == "set" && words[1] == "community" {
        return words.iter().map(|w| well_known_community(w).unwrap_or(w)).collect::<Vec<_>>().join(" ");
    }
    words.join(" ")
}

fn well_known_community(name: &str) -> Option<&'static str> {
    Some(match name {
        "graceful-shutdown" => "65535:0",
        "accept-own" => "65535:1",
        "route-filter-translated-v4" => "65535:2",
        "route-filter-v4" => "65535:3",
        "route-filter-translated-v6" => "65535:4",
        "route-filter-v6" => "65535:5",
        "llgr-stale" => "65535:6",
        "no-llgr" => "65535:7",
        "accept-own-nexthop" => "65535:8",
        "blackhole" => "65535:666",
        "no-export" => "65535:65281",
        "no-advertise" => "65535:65282",
        "local-AS" => "65535:65283",
        "no-peer" => "65535:65284",
        _ => return None,
    })
}

/// For a line that holds one value of a setting, the setting (the line without its value):
/// a changed value is then sent as the new line alone, which replaces the old one in FRR.
pub fn setting_key(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let key = |n: usize| Some(w[..n.min(w.len())].join(" "));
    match w.as_slice() {
        // `log stdout` alone is FRR's spelling of the debugging level: the same setting
        ["log", "stdout", ..] => Some("log stdout".to_string()),
        ["hostname", ..] | ["log", "timestamp", "precision", ..] => key(w.len() - 1),
        ["bgp", "router-id", _] => key(2),
        ["neighbor", _, "remote-as", _] => key(3),
        ["neighbor", _, "interface", "remote-as", _] => key(3).map(|k| k.replace(" interface", " remote-as")),
        ["neighbor", _, "timers", "connect", _] => key(4),
        ["neighbor", _, "timers", _, _] => key(3),
        ["neighbor", _, "port" | "password" | "update-source" | "description", _] => key(3),
        ["neighbor", _, "local-as", ..] => key(3),
        ["neighbor", _, "allowas-in", ..] => key(3),
        ["neighbor", _, "bfd", "profile", _] => key(4),
        ["neighbor", _, "route-map", _, dir] => Some(format!("neighbor {} route-map {dir}", w[1])),
        ["match", _, "address", "prefix-list", _] => key(4),
        ["set", "local-preference", _] | ["set", "ip", "next-hop", _] => key(w.len() - 1),
        ["set", "community" | "large-community", ..] => key(2),
        ["set", "ipv6", "next-hop", "global", _] => key(4),
        ["rd", _] | ["vni", _] => key(1),
        ["receive-interval" | "transmit-interval" | "detect-multiplier" | "minimum-ttl", _] => key(1),
        ["echo", "transmit-interval" | "receive-interval", _] => key(2),
        _ => None,
    }
}

/// The command that removes a line (or a whole block, given its header).
fn removal(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        // address families cannot be deleted, VRFs are zebra's (only their `vni` is ours), and
        // `no bfd` would take everything: their contents are removed one by one
        ["address-family", ..] | ["vrf", ..] | ["bfd"] => None,
        ["no", rest @ ..] => Some(rest.join(" ")),
        // `neighbor X interface remote-as Y` is removed as `no neighbor X`
        ["neighbor", peer, "interface", ..] | ["neighbor", peer, "remote-as", ..] => Some(format!("no neighbor {peer}")),
        _ => Some(format!("no {line}")),
    }
}

/// Whether a top-level line's removal must wait until everything that refers to it is gone
/// (prefix lists and BFD profiles are removed last; routers first).
fn removal_rank(line: &str) -> u8 {
    if line.starts_with("router bgp ") && line.contains(" vrf ") {
        // VRF instances before the default one, which FRR keeps while they exist
        0
    } else if line.starts_with("router ") {
        1
    } else if line.starts_with("route-map ") {
        2
    } else if line.starts_with("ip prefix-list") || line.starts_with("ipv6 prefix-list") {
        3
    } else {
        4
    }
}

/// Order of additions: what is referred to comes first.
fn addition_rank(line: &str) -> u8 {
    if line.starts_with("ip prefix-list") || line.starts_with("ipv6 prefix-list") {
        0
    } else if line.starts_with("route-map ") {
        1
    } else if line.starts_with("bfd") || line.starts_with("vrf ") {
        2
    } else if line.starts_with("router ") {
        3
    } else {
        4
    }
}

/// A batch of configuration commands, with context lines, ready for `vtysh -f`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub text: String,
    /// Commands that change something (not counting context and `exit` lines).
    pub changes: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.changes == 0
    }
}

struct Emit<'a> {
    out: &'a mut String,
    changes: usize,
    added: Vec<String>,
    removed: Vec<String>,
}

impl Emit<'_> {
    fn line(&mut self, depth: usize, line: &str) {
        let _ = writeln!(self.out, "{}{line}", " ".repeat(depth));
    }
    fn enter(&mut self, ctx: &[&str]) {
        for (d, c) in ctx.iter().enumerate() {
            self.line(d, c);
        }
    }
    fn leave(&mut self, ctx: &[&str]) {
        for (d, c) in ctx.iter().enumerate().rev() {
            self.line(d, exit_for(c));
        }
    }
    fn subtree(&mut self, depth: usize, node: &Node, path: &str) {
        self.line(depth, &node.line);
        self.changes += 1;
        self.added.push(format!("{path}{}", node.line));
        for c in &node.children {
            self.subtree(depth + 1, c, &format!("{path}{} > ", node.line));
        }
        if !node.children.is_empty() {
            self.line(depth, exit_for(&node.line));
        }
    }
}

fn exit_for(header: &str) -> &'static str {
    if header.starts_with("address-family") {
        "exit-address-family"
    } else if header.starts_with("vni ") {
        "exit-vni"
    } else if header.starts_with("vrf ") {
        "exit-vrf"
    } else {
        "exit"
    }
}

/// The commands that turn `old` into `new`.
pub fn diff(old: &[Node], new: &[Node]) -> Batch {
    let mut text = String::new();
    let mut e = Emit { out: &mut text, changes: 0, added: Vec::new(), removed: Vec::new() };
    // additions and in-place changes first (referenced objects before their users), removals
    // after, in reverse dependency order, so nothing referenced is ever missing.
    let mut adds: Vec<&Node> = Vec::new();
    let mut changed: Vec<(&Node, &Node)> = Vec::new();
    for n in new {
        match old.iter().find(|o| o.line == n.line) {
            None => adds.push(n),
            Some(o) if o != n => changed.push((o, n)),
            Some(_) => {}
        }
    }
    let mut removes: Vec<&Node> = old.iter().filter(|o| !new.iter().any(|n| n.line == o.line)).collect();
    // top-level single-value settings (hostname, log level) are replaced, not removed
    let replaced: BTreeSet<String> = adds.iter().filter_map(|n| setting_key(&n.line)).collect();
    removes.retain(|o| !(o.children.is_empty() && setting_key(&o.line).is_some_and(|k| replaced.contains(&k))));
    adds.sort_by_key(|n| addition_rank(&n.line));
    changed.sort_by_key(|(_, n)| addition_rank(&n.line));
    removes.sort_by_key(|n| removal_rank(&n.line));

    // A router whose ASN changes is a new BGP instance in the same VRF: FRR refuses the new
    // one while the old exists, so the old one goes first (its sessions restart either way).
    let vrf_of = |l: &str| l.starts_with("router bgp ").then(|| l.split_whitespace().nth(4).unwrap_or("").to_string());
    let new_vrfs: BTreeSet<String> = adds.iter().filter_map(|n| vrf_of(&n.line)).collect();
    let (first, later): (Vec<&Node>, Vec<&Node>) = removes.into_iter().partition(|o| vrf_of(&o.line).is_some_and(|v| new_vrfs.contains(&v)));
    let mut removes = later;
    for o in first {
        if let Some(cmd) = removal(&o.line) {
            e.line(0, &cmd);
            e.changes += 1;
            e.removed.push(o.line.clone());
        }
    }
    removes.sort_by_key(|n| removal_rank(&n.line));
    for n in &adds {
        e.subtree(0, n, "");
    }
    for (o, n) in &changed {
        diff_block(&mut e, &[&n.line], &o.children, &n.children, &BTreeSet::new());
    }
    for o in &removes {
        match removal(&o.line) {
            Some(cmd) => {
                e.line(0, &cmd);
                e.changes += 1;
                e.removed.push(o.line.clone());
            }
            None => diff_block(&mut e, &[&o.line], &o.children, &[], &BTreeSet::new()),
        }
    }
    let (changes, added, removed) = (e.changes, e.added, e.removed);
    Batch { text, changes, added, removed }
}

/// Changes inside a block that exists on both sides.
fn diff_block(e: &mut Emit, ctx: &[&str], old: &[Node], new: &[Node], gone: &BTreeSet<String>) {
    let path = ctx.join(" > ") + " > ";
    let new_keys: BTreeSet<String> = new.iter().filter(|n| !old.iter().any(|o| o.line == n.line)).filter_map(|n| setting_key(&n.line)).collect();
    let mut wrote_ctx = false;
    let ensure_ctx = |e: &mut Emit, wrote: &mut bool| {
        if !*wrote {
            e.enter(ctx);
            *wrote = true;
        }
    };
    // removals first inside a block: a replaced setting is not removed (its new value is sent
    // below), and a neighbor's lines go before the neighbor itself
    let mut removes: Vec<&Node> = old.iter().filter(|o| !new.iter().any(|n| n.line == o.line)).collect();
    removes.retain(|o| !(o.children.is_empty() && setting_key(&o.line).is_some_and(|k| new_keys.contains(&k))));
    // `no neighbor X` must come after `no neighbor X <option>` lines (it deletes them all)
    removes.sort_by_key(|o| o.line.split_whitespace().nth(2) == Some("remote-as") || o.line.split_whitespace().nth(2) == Some("interface"));
    let mut removes_neighbor: BTreeSet<String> = removes
        .iter()
        .filter(|o| matches!(o.line.split_whitespace().nth(2), Some("remote-as" | "interface")))
        .filter_map(|o| o.line.split_whitespace().nth(1).map(String::from))
        .collect();
    removes_neighbor.extend(gone.iter().cloned());
    for o in removes {
        // options of a neighbor that is removed go with it
        let w: Vec<&str> = o.line.split_whitespace().collect();
        if w.len() > 2 && w[0] == "neighbor" && removes_neighbor.contains(w[1]) && !matches!(w[2], "remote-as" | "interface") {
            continue;
        }
        if o.children.is_empty() || !o.line.starts_with("address-family") {
            if let Some(cmd) = removal(&o.line) {
                ensure_ctx(e, &mut wrote_ctx);
                e.line(ctx.len(), &cmd);
                e.changes += 1;
                e.removed.push(format!("{path}{}", o.line));
                continue;
            }
        }
        // an address family that goes away: remove what is inside it
        if wrote_ctx {
            e.leave(ctx);
            wrote_ctx = false;
        }
        let mut inner: Vec<&str> = ctx.to_vec();
        inner.push(&o.line);
        diff_block(e, &inner, &o.children, &[], &removes_neighbor);
    }
    for n in new {
        match old.iter().find(|o| o.line == n.line) {
            None => {
                ensure_ctx(e, &mut wrote_ctx);
                e.subtree(ctx.len(), n, &path);
            }
            Some(o) if o != n => {
                if wrote_ctx {
                    e.leave(ctx);
                    wrote_ctx = false;
                }
                let mut inner: Vec<&str> = ctx.to_vec();
                inner.push(&n.line);
                diff_block(e, &inner, &o.children, &n.children, &removes_neighbor);
            }
            Some(_) => {}
        }
    }
    if wrote_ctx {
        e.leave(ctx);
    }
}

/// Every line with its context, for comparing a desired tree with FRR's running one.
pub fn flatten(nodes: &[Node]) -> BTreeSet<String> {
    fn walk(nodes: &[Node], prefix: &str, out: &mut BTreeSet<String>) {
        for n in nodes {
            let p = format!("{prefix}{}", n.line);
            out.insert(p.clone());
            walk(&n.children, &format!("{p} > "), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(nodes, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "hostname n1\nip prefix-list L seq 5 permit 10.0.0.0/24\nroute-map R permit 5001\n match ip address prefix-list L\nexit\nrouter bgp 65000\n neighbor 192.0.2.1 remote-as 65001\n neighbor 192.0.2.1 timers 30 90\n !\n address-family ipv4 unicast\n  network 10.0.0.0/24\n  neighbor 192.0.2.1 activate\n exit-address-family\nexit\n";

    #[test]
    fn parses_blocks_by_indentation() {
        let t = parse(A);
        assert_eq!(t.len(), 4);
        assert_eq!(t[2].children.len(), 1);
        assert_eq!(t[3].children.len(), 3);
        assert_eq!(t[3].children[2].children.len(), 2);
    }

    /// From the debugging level (which FRR prints as `log stdout` alone) to another level is
    /// one command: `no log stdout` after it would turn stdout logging off (and FRR 10.7's bgpd
    /// stopped taking configuration after it).
    #[test]
    fn a_log_level_change_is_one_command() {
        let d = diff(&parse("log stdout debugging\nhostname n\n"), &parse("log stdout warnings\nhostname n\n"));
        assert_eq!(d.text.lines().filter(|l| l.starts_with("log") || l.starts_with("no log")).collect::<Vec<_>>(), ["log stdout warnings"], "{}", d.text);
        let d = diff(&parse("log stdout warnings\n"), &parse("log stdout debugging\n"));
        assert!(!d.text.contains("no log"), "{}", d.text);
    }

    #[test]
    fn identical_configs_need_no_command() {
        assert!(diff(&parse(A), &parse(A)).is_empty());
    }

    #[test]
    fn one_prefix_touches_one_entry_and_one_network() {
        let b = A
            .replace("ip prefix-list L seq 5 permit 10.0.0.0/24\n", "ip prefix-list L seq 5 permit 10.0.0.0/24\nip prefix-list L seq 9 permit 10.0.1.0/24\n")
            .replace("  network 10.0.0.0/24\n", "  network 10.0.0.0/24\n  network 10.0.1.0/24\n");
        let d = diff(&parse(A), &parse(&b));
        assert_eq!(d.changes, 2, "{}", d.text);
        assert_eq!(
            d.text,
            "ip prefix-list L seq 9 permit 10.0.1.0/24\nrouter bgp 65000\n address-family ipv4 unicast\n  network 10.0.1.0/24\n exit-address-family\nexit\n"
        );
        let back = diff(&parse(&b), &parse(A));
        assert_eq!(back.text, "router bgp 65000\n address-family ipv4 unicast\n  no network 10.0.1.0/24\n exit-address-family\nexit\nno ip prefix-list L seq 9 permit 10.0.1.0/24\n");
    }

    #[test]
    fn changed_values_are_replaced_in_place() {
        let b = A.replace("timers 30 90", "timers 20 60").replace("hostname n1", "hostname n2");
        let d = diff(&parse(A), &parse(&b));
        assert_eq!(d.text, "hostname n2\nrouter bgp 65000\n neighbor 192.0.2.1 timers 20 60\nexit\n");
    }

    #[test]
    fn allowas_in_changes_in_place_and_matches_frr_spelling_of_three() {
        let with = |v: &str| A.replace("  neighbor 192.0.2.1 activate\n", &format!("  neighbor 192.0.2.1 activate\n  neighbor 192.0.2.1 allowas-in{v}\n"));
        // FRR shows `allowas-in 3` as the bare command: not a change
        assert!(diff(&parse(&with("")), &parse(&with(" 3"))).is_empty());
        let d = diff(&parse(&with(" origin")), &parse(&with(" 5")));
        assert_eq!(d.changes, 1, "{}", d.text);
        assert!(d.text.contains("  neighbor 192.0.2.1 allowas-in 5\n") && !d.text.contains("no neighbor"), "{}", d.text);
        let gone = diff(&parse(&with(" origin")), &parse(A));
        assert!(gone.text.contains("  no neighbor 192.0.2.1 allowas-in origin\n"), "{}", gone.text);
    }

    #[test]
    fn a_removed_neighbor_is_removed_once() {
        let b = A.replace(" neighbor 192.0.2.1 remote-as 65001\n neighbor 192.0.2.1 timers 30 90\n", "").replace("  neighbor 192.0.2.1 activate\n", "");
        let d = diff(&parse(A), &parse(&b));
        assert!(d.text.contains(" no neighbor 192.0.2.1\n"), "{}", d.text);
        assert!(!d.text.contains("no neighbor 192.0.2.1 timers"), "{}", d.text);
    }

    #[test]
    fn vrf_and_bfd_blocks_lose_only_their_contents() {
        let old = parse(
            "vrf red\n vni 3000\nexit-vrf\nbfd\n profile p\n  receive-interval 100\n exit\nexit\nrouter bgp 65000\nexit\nrouter bgp 65000 vrf red\nexit\n",
        );
        let d = diff(&old, &[]);
        assert_eq!(d.text, "no router bgp 65000 vrf red\nno router bgp 65000\nvrf red\n no vni 3000\nexit-vrf\nbfd\n no profile p\nexit\n");
    }

    #[test]
    fn running_config_noise_is_ignored() {
        let running = format!("Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\nfrr defaults traditional\n{A}!\nend\n");
        assert!(diff(&parse(&running), &parse(A)).is_empty());
        assert_eq!(flatten(&parse(&running)), flatten(&parse(A)));
    }
}
