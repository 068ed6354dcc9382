//! Parsing and validation of the scalar values that reach frr.conf.
//!
//! Every string that the renderer places into the configuration goes through one of these
//! functions first, so that a value always occupies exactly its own word: no whitespace, no
//! control characters, no FRR comment markers, and FRR's length limits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

/// Parses a Go duration (`1m30s`, `33.333333333s`, `0s`, `0`) into whole nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<u128, String> {
    let bad = || format!("{s:?} is not a duration (expected e.g. 90s, 1m30s, 1h)");
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() || s.starts_with('-') || s.starts_with('+') {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad())? };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        // fraction: exact decimal arithmetic, truncated below one nanosecond
        let mut frac_scale = scale;
        for d in frac_part.chars() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            value += u128::from(d.to_digit(10).ok_or_else(bad)?) * frac_scale;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        rest = tail;
    }
    Ok(total)
}

/// Parses an IP address and returns it in canonical form. IPv4-mapped IPv6 addresses are refused:
/// they name an IPv4 peer in a way FRR would treat as IPv6.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s.trim().parse().map_err(|_| format!("{s:?} is not an IP address"))?;
    if s.trim() != s {
        return Err(format!("{s:?} has surrounding whitespace"));
    }
    if let IpAddr::V6(v6) = ip {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("{s:?} is an IPv4-mapped IPv6 address; write the IPv4 address instead"));
        }
    }
    Ok(ip)
}

pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    match parse_ip(s)? {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(format!("{s:?} is not an IPv4 address")),
    }
}

pub fn parse_ipv6(s: &str) -> Result<Ipv6Addr, String> {
    match parse_ip(s)? {
        IpAddr::V6(v6) => Ok(v6),
        IpAddr::V4(_) => Err(format!("{s:?} is not an IPv6 address")),
    }
}

/// Parses a CIDR prefix. Host bits set is an error (`192.0.2.1/24`), not silently masked.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s.parse().map_err(|_| format!("{s:?} is not a CIDR prefix (expected e.g. 192.0.2.0/24)"))?;
    if net.trunc() != net {
        return Err(format!("{s:?} has host bits set; the prefix is {}", net.trunc()));
    }
    if let IpNet::V6(v6) = net {
        if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 {
            return Err(format!("{s:?} is an IPv4-mapped IPv6 prefix; write the IPv4 prefix instead"));
        }
    }
    Ok(net)
}

/// Address family of a session or prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
    pub fn max_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    /// FRR's keyword for prefix lists and matches: `ip` or `ipv6`.
    pub fn frr(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    }
    /// The anchor's name part: `ipv4` or `ipv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// A BGP community as frr-k8s accepts it: `A:B` (16-bit parts) or `large:A:B:C` (32-bit parts).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Community {
    Standard(u16, u16),
    Large(u32, u32, u32),
}

impl Community {
    pub fn parse(s: &str) -> Result<Community, String> {
        let bad = |why: &str| format!("invalid community {s:?}: {why}");
        if let Some(rest) = s.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3 {
                return Err(bad("a large community is large:A:B:C"));
            }
            let n = |p: &str| decimal::<u32>(p).ok_or_else(|| bad("each part of a large community is a number 0-4294967295"));
            return Ok(Community::Large(n(parts[0])?, n(parts[1])?, n(parts[2])?));
        }
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 2 {
            return Err(bad("expected A:B (each 0-65535) or large:A:B:C; well-known names and extended communities are not supported"));
        }
        let n = |p: &str| decimal::<u16>(p).ok_or_else(|| bad("each part of a standard community is a number 0-65535"));
        Ok(Community::Standard(n(parts[0])?, n(parts[1])?))
    }
    /// The value as FRR prints it (`A:B` or `A:B:C`).
    pub fn value(&self) -> String {
        match self {
            Community::Standard(a, b) => format!("{a}:{b}"),
            Community::Large(a, b, c) => format!("{a}:{b}:{c}"),
        }
    }
}

impl fmt::Display for Community {
    /// The API's spelling (`A:B` or `large:A:B:C`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(..) => write!(f, "{}", self.value()),
            Community::Large(..) => write!(f, "large:{}", self.value()),
        }
    }
}

/// Strict base-10: digits only (no sign, no spaces), no overflow.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A route distinguisher or route target `GLOBAL:LOCAL`, checked as the CRD's CEL rules do.
pub fn parse_rd_rt(s: &str, what: &str, wildcard: bool) -> Result<String, String> {
    let bad = |why: &str| format!("invalid {what} {s:?}: {why}");
    if s.len() > 21 {
        return Err(bad("longer than 21 characters"));
    }
    let (g, l) = match s.split_once(':') {
        Some((g, l)) if !l.contains(':') => (g, l),
        _ => return Err(bad("expected exactly one ':' (GLOBAL:LOCAL)")),
    };
    let local: u64 = decimal::<u64>(l).ok_or_else(|| bad("the local administrator must be a number"))?;
    if wildcard && g == "*" {
        if local > u64::from(u32::MAX) {
            return Err(bad("the local administrator must be at most 4294967295"));
        }
        return Ok(s.to_string());
    }
    if g.contains('.') {
        g.parse::<Ipv4Addr>().map_err(|_| bad("the global administrator must be an IPv4 address or a number"))?;
        if local > 65535 {
            return Err(bad("with an IPv4 global administrator the local administrator must be at most 65535"));
        }
        return Ok(s.to_string());
    }
    let global: u64 = decimal::<u64>(g).ok_or_else(|| {
        bad(if wildcard {
            "the global administrator must be '*', an IPv4 address or a number"
        } else {
            "the global administrator must be an IPv4 address or a number"
        })
    })?;
    if global > u64::from(u32::MAX) {
        return Err(bad("the global administrator must be at most 4294967295"));
    }
    if global > 65535 && local > 65535 {
        return Err(bad("with a 4-byte ASN global administrator the local administrator must be at most 65535"));
    }
    if local > u64::from(u32::MAX) {
        return Err(bad("the local administrator must be at most 4294967295"));
    }
    Ok(s.to_string())
}

/// A single FRR word: printable ASCII, no whitespace, not starting with a comment marker,
/// at most `max` bytes.
pub fn check_word(s: &str, what: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > max {
        return Err(format!("{what} is {} characters long; FRR allows at most {max}", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{what} {s:?} contains {c:?}; only printable ASCII without spaces is allowed"));
    }
    if s.starts_with('!') || s.starts_with('#') {
        return Err(format!("{what} {s:?} starts with a comment character"));
    }
    Ok(())
}

/// A Linux interface name (used for unnumbered peers, update-source and VRF names).
pub fn check_ifname(s: &str, what: &str) -> Result<(), String> {
    check_word(s, what, 15)?;
    if s == "." || s == ".." || s.contains('/') || s.contains(':') {
        return Err(format!("{what} {s:?} is not a valid interface name"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@+".contains(&b)) {
        return Err(format!("{what} {s:?} is not a valid interface name (letters, digits, - _ . @ +)"));
    }
    Ok(())
}

/// A name FRR uses as an identifier (BFD profiles): letters, digits, `-`, `_`, `.`.
pub fn check_name(s: &str, what: &str, max: usize) -> Result<(), String> {
    check_word(s, what, max)?;
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("{what} {s:?} may only contain letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

/// A hostname as FRR's `hostname` takes it (RFC 1123 labels).
pub fn check_hostname(s: &str) -> Result<(), String> {
    check_word(s, "hostname", 253)?;
    let ok = s.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') && !label.starts_with('-')
    });
    if !ok {
        return Err(format!("hostname {s:?} is not a valid host name"));
    }
    Ok(())
}

/// A TCP-MD5 password: FRR keeps it as one word, and the kernel takes at most 80 bytes.
pub fn check_password(s: &str) -> Result<(), String> {
    // Never echo the value: the message must be safe to log.
    if s.is_empty() {
        return Err("the password is empty".into());
    }
    if s.len() > 80 {
        return Err(format!("the password is {} bytes long; TCP-MD5 allows at most 80", s.len()));
    }
    if s.chars().any(|c| !c.is_ascii_graphic()) {
        return Err("the password contains whitespace, control or non-ASCII characters, which FRR cannot keep in one word".into());
    }
    Ok(())
}

/// A stable 64-bit FNV-1a hash; used for sequence numbers that must not depend on other entries.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let s = 1_000_000_000u128;
        assert_eq!(parse_go_duration("1m30s").unwrap(), 90 * s);
        assert_eq!(parse_go_duration("33.333333333s").unwrap(), 33_333_333_333);
        assert_eq!(parse_go_duration("0s").unwrap(), 0);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert_eq!(parse_go_duration("3m0s").unwrap(), 180 * s);
        assert_eq!(parse_go_duration("1h").unwrap(), 3600 * s);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5400 * s);
        assert_eq!(parse_go_duration("500ms").unwrap(), s / 2);
        assert_eq!(parse_go_duration(".5s").unwrap(), s / 2);
        for bad in ["", "10", "-1s", "1x", "s", "1.2.3s", "1 s", "1s ", "1m30", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn addresses_are_canonical() {
        assert_eq!(parse_ip("2001:DB8::1").unwrap(), parse_ip("2001:db8:0::1").unwrap());
        assert_eq!(parse_ip("2001:DB8::1").unwrap().to_string(), "2001:db8::1");
        assert!(parse_ip("::ffff:192.0.2.1").is_err());
        assert!(parse_ip(" 192.0.2.1").is_err());
        assert!(parse_ip("192.0.2.1\n").is_err());
        assert!(parse_prefix("192.0.2.1/24").unwrap_err().contains("192.0.2.0/24"));
        assert_eq!(parse_prefix("2001:DB8::/32").unwrap().to_string(), "2001:db8::/32");
        assert!(parse_prefix("::ffff:192.0.2.0/120").is_err());
    }

    #[test]
    fn communities() {
        assert_eq!(Community::parse("65000:100").unwrap(), Community::Standard(65000, 100));
        assert_eq!(Community::parse("large:1:2:3").unwrap().value(), "1:2:3");
        for bad in ["no-export", "65536:1", "1:2:3", "large:1:2", "+1:2", "1:", " 1:2", "large:4294967296:1:1"] {
            assert!(Community::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn route_distinguishers() {
        for ok in ["65000:100", "192.0.2.1:100", "4200000000:100", "65000:4294967295"] {
            parse_rd_rt(ok, "RD", false).unwrap();
        }
        parse_rd_rt("*:100", "RT", true).unwrap();
        for bad in ["65000", "a:1", "1:2:3", "192.0.2.1:70000", "4200000000:70000", "*:1", "65000:4294967296"] {
            assert!(parse_rd_rt(bad, "RD", false).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn words() {
        assert!(check_word("ok-word", "x", 10).is_ok());
        assert!(check_word("two words", "x", 20).is_err());
        assert!(check_word("line\nbreak", "x", 20).is_err());
        assert!(check_word("toolongvalue", "x", 5).is_err());
        assert!(check_word("!comment", "x", 20).is_err());
        assert!(check_ifname("eth0.100", "i").is_ok());
        assert!(check_ifname("averyveryverylongname", "i").is_err());
        assert!(check_password("s3cr3t!").is_ok());
        assert!(check_password("has space").is_err());
        assert!(check_password("#x").is_ok());
        assert!(check_password(&"x".repeat(81)).is_err());
        assert!(!check_password("has space").unwrap_err().contains("has space"));
    }
}
