//! The FRR side: configuration trees and their differences, vtysh, and applying a desired
//! configuration to a running FRR.

pub mod apply;
pub mod conf;
pub mod keeper;
pub mod state;
pub mod vtysh;

/// Words after which the rest of an FRR line is a secret: BGP, LDP and vty passwords, key
/// chains (`key-string`), OSPF (`authentication-key`, `message-digest-key`), IS-IS
/// (`area-password`, `domain-password`, `password`), each with the shortest abbreviation
/// that is redacted (FRR's CLI takes any unambiguous prefix of a keyword: `passwo x` is
/// `password x`). A hyphenated keyword's abbreviation reaches past the hyphen, so that
/// `authentication` and `message-digest`, keywords of their own, stay.
const SECRET_KEYWORDS: &[(&str, usize)] =
    &[("password", 5), ("key-string", 5), ("authentication-key", 16), ("message-digest-key", 16), ("area-password", 6), ("domain-password", 8)];

/// Whether `word` is `keyword` or an abbreviation of it at least `min` long.
fn abbreviates(word: &str, keyword: &str, min: usize) -> bool {
    word.len() >= min.min(keyword.len()) && keyword.starts_with(word)
}

/// Whether the word at `i` starts a secret: a keyword above; `string` after `authentication`
/// (RIP); `key` after `authentication ... key-id N hash-algo H` (OSPFv3); `authentication` after
/// `nhrp` (NHRP); abbreviated as FRR takes them.
fn secret_starts(words: &[&str], i: usize) -> bool {
    let w = words[i];
    if SECRET_KEYWORDS.iter().any(|(k, min)| abbreviates(w, k, *min)) {
        return true;
    }
    let before = &words[..i];
    let authentication = |w: &&str| abbreviates(w, "authentication", 4);
    match before.last() {
        Some(prev) if authentication(prev) && abbreviates(w, "string", 1) => true,
        Some(prev) if abbreviates(prev, "nhrp", 2) && authentication(&w) => true,
        _ => abbreviates(w, "key", 1) && before.iter().any(authentication) && before.iter().any(|b| abbreviates(b, "key-id", 5)),
    }
}

/// Replaces every secret in configuration text (`... password SECRET`, `key-string SECRET`,
/// ...) with `<retracted>`, as frr-k8s does for passwords, so the text can be logged, printed,
/// diffed or stored in a status.
pub fn redact(text: &str) -> String {
    text.split('\n').map(redact_line).collect::<Vec<_>>().join("\n")
}

/// [`redact`] for one line. Words are separated by any whitespace (FRR's CLI takes tabs).
pub fn redact_line(line: &str) -> std::borrow::Cow<'_, str> {
    // (start, word) of every word
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain(std::iter::once((line.len(), ' '))) {
        match (start, c.is_whitespace()) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                words.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    let plain: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
    for (i, (at, word)) in words.iter().enumerate() {
        if secret_starts(&plain, i) && i + 1 < words.len() {
            // the keyword and everything after it
            return format!("{}{word} <retracted>", &line[..*at]).into();
        }
    }
    line.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact(" neighbor 192.0.2.1 password s3cr#t!\nx"), " neighbor 192.0.2.1 password <retracted>\nx");
        assert_eq!(super::redact("password zebra"), "password <retracted>");
        assert_eq!(super::redact("no secrets here"), "no secrets here");
    }

    #[test]
    fn redacts_every_secret_keyword() {
        for (line, kept) in [
            (" key-string Key-Chain-Secret", " key-string <retracted>"),
            (" ip ospf authentication-key Ospf-Secret", " ip ospf authentication-key <retracted>"),
            (" ip ospf message-digest-key 1 md5 Md5-Secret", " ip ospf message-digest-key <retracted>"),
            (" area-password md5 Isis-Secret", " area-password <retracted>"),
            (" domain-password clear Isis-Secret", " domain-password <retracted>"),
            (" isis password clear Isis-Secret", " isis password <retracted>"),
            (" ip rip authentication string Rip-Secret", " ip rip authentication string <retracted>"),
            (" ipv6 ospf6 authentication key-id 1 hash-algo md5 key Ospf6-Secret", " ipv6 ospf6 authentication key-id 1 hash-algo md5 key <retracted>"),
            (" ip nhrp authentication Nhrp-Secret", " ip nhrp authentication <retracted>"),
            (" neighbor 192.0.2.1 password Bgp-Secret", " neighbor 192.0.2.1 password <retracted>"),
        ] {
            assert_eq!(super::redact(line), kept);
        }
        // words that merely name a chain or a key id stay
        for plain in [
            "key chain my-chain",
            " key 1",
            " ip ospf authentication message-digest",
            " ip rip authentication key-chain my-chain",
            " neighbor 192.0.2.1 passive",
            " ip ospf message-digest 1",
        ] {
            assert_eq!(super::redact(plain), plain);
        }
    }

    #[test]
    fn redacts_tabs_and_abbreviations_as_frr_reads_them() {
        for (line, kept) in [
            (" neighbor 192.0.2.1 password\tTab-Secret", " neighbor 192.0.2.1 password <retracted>"),
            ("\tneighbor\t192.0.2.1\tpassword\tTab-Secret", "\tneighbor\t192.0.2.1\tpassword <retracted>"),
            (" neighbor 192.0.2.1 passwo Short-Secret", " neighbor 192.0.2.1 passwo <retracted>"),
            (" neighbor 192.0.2.1 passw Short-Secret", " neighbor 192.0.2.1 passw <retracted>"),
            (" key-str Chain-Secret", " key-str <retracted>"),
            (" ip ospf authentication-k Ospf-Secret", " ip ospf authentication-k <retracted>"),
            (" ip rip auth str Rip-Secret", " ip rip auth str <retracted>"),
            (" ip nhrp auth Nhrp-Secret", " ip nhrp auth <retracted>"),
            (" neighbor 192.0.2.1   password   Spaced-Secret", " neighbor 192.0.2.1   password <retracted>"),
        ] {
            assert_eq!(super::redact(line), kept, "{line:?}");
        }
    }
}
