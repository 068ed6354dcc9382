//! The FRR side: configuration trees and their differences, vtysh, and applying a desired
//! configuration to a running FRR.

pub mod apply;
pub mod conf;
pub mod keeper;
pub mod state;
pub mod vtysh;

/// Words after which the rest of an FRR line is a secret: BGP, LDP and vty passwords, key
/// chains (`key-string`), OSPF (`authentication-key`, `message-digest-key`), IS-IS
/// (`area-password`, `domain-password`, `password`).
const SECRET_KEYWORDS: &[&str] = &["password", "key-string", "authentication-key", "message-digest-key", "area-password", "domain-password"];

/// Whether the word at `i` starts a secret: a keyword above; `string` after `authentication`
/// (RIP); `key` after `authentication ... key-id N hash-algo H` (OSPFv3); `authentication` after
/// `nhrp` (NHRP).
fn secret_starts(words: &[&str], i: usize) -> bool {
    let w = words[i];
    if SECRET_KEYWORDS.contains(&w) {
        return true;
    }
    let before = &words[..i];
    match w {
        "string" => before.last() == Some(&"authentication"),
        "key" => before.contains(&"authentication") && before.contains(&"key-id"),
        "authentication" => before.last() == Some(&"nhrp"),
        _ => false,
    }
}

/// Replaces every secret in configuration text (`... password SECRET`, `key-string SECRET`,
/// ...) with `<retracted>`, as frr-k8s does for passwords, so the text can be logged, printed,
/// diffed or stored in a status.
pub fn redact(text: &str) -> String {
    text.split('\n').map(redact_line).collect::<Vec<_>>().join("\n")
}

/// [`redact`] for one line.
pub fn redact_line(line: &str) -> std::borrow::Cow<'_, str> {
    let words: Vec<&str> = line.split(' ').collect();
    let mut pos = 0;
    for (i, word) in words.iter().enumerate() {
        if !word.is_empty() && secret_starts(&words, i) && i + 1 < words.len() {
            // the keyword and everything after it
            return format!("{}{word} <retracted>", &line[..pos]).into();
        }
        pos += word.len() + 1;
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
        for plain in ["key chain my-chain", " key 1", " ip ospf authentication message-digest", " ip rip authentication key-chain my-chain"] {
            assert_eq!(super::redact(plain), plain);
        }
    }
}
