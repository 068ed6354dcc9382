//! The FRR side: configuration trees and their differences, vtysh, and applying a desired
//! configuration to a running FRR.

pub mod apply;
pub mod conf;
pub mod state;
pub mod vtysh;

/// Replaces every password in configuration text (`... password SECRET`) with `<retracted>`,
/// as frr-k8s does, so the text can be logged, printed or stored in a status.
pub fn redact(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            // the first word `password` and everything after it
            let mut pos = 0;
            for word in line.split(' ') {
                if word == "password" {
                    return format!("{}password <retracted>", &line[..pos]);
                }
                pos += word.len() + 1;
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact(" neighbor 192.0.2.1 password s3cr#t!\nx"), " neighbor 192.0.2.1 password <retracted>\nx");
        assert_eq!(super::redact("password zebra"), "password <retracted>");
        assert_eq!(super::redact("no secrets here"), "no secrets here");
    }
}
