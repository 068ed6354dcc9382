//! The webhook's own serving certificate, for clusters without cert-manager: a CA and a
//! serving certificate kept in one Secret (shared by every replica), and the CA put into the
//! ValidatingWebhookConfiguration's `caBundle` so that the API server trusts the webhook.
//!
//! The decisions (is the stored pair still good for these hosts, and until when) are pure
//! functions of the stored PEM text and the time; the Kubernetes part reads and writes the
//! Secret with optimistic concurrency, so two replicas starting together agree on one pair.
//! Private keys never leave the Secret and the process: they are not logged or reported.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, Context};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::Client;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};
use tokio_rustls::rustls;

/// Lifetime of the CA.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Lifetime of a serving certificate.
pub const CERT_VALIDITY: Duration = Duration::days(365);
/// A certificate is renewed this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::days(30);

/// The Secret's keys (the `kubernetes.io/tls` layout plus the CA).
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// A CA and a serving certificate signed by it, as PEM text.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Bundle {
    // the keys are secrets: never printed
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle").field("ca_cert", &self.ca_cert.len()).field("cert", &self.cert.len()).finish_non_exhaustive()
    }
}

/// What a stored bundle needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Good for the hosts for longer than [`RENEW_BEFORE`].
    Keep,
    /// A new serving certificate from the same CA (the caBundle does not change).
    Certificate(String),
    /// A new CA and serving certificate.
    All(String),
}

fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "frr-composer webhook CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + CA_VALIDITY;
    p
}

/// A new CA and a serving certificate for `hosts` (DNS names or IP addresses).
pub fn new_bundle(hosts: &[String], now: OffsetDateTime) -> Result<Bundle, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let params = ca_params(now);
    let ca_cert = params.self_signed(&ca_key)?.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let (cert, key) = issue(&Issuer::new(params, ca_key), hosts, now)?;
    Ok(Bundle { ca_cert, ca_key: ca_key_pem, cert, key })
}

/// A new serving certificate from the bundle's CA.
pub fn renew_certificate(b: &Bundle, hosts: &[String], now: OffsetDateTime) -> Result<Bundle, rcgen::Error> {
    let issuer = Issuer::from_ca_cert_pem(&b.ca_cert, KeyPair::from_pem(&b.ca_key)?)?;
    let (cert, key) = issue(&issuer, hosts, now)?;
    Ok(Bundle { cert, key, ..b.clone() })
}

fn issue(issuer: &Issuer<'_, KeyPair>, hosts: &[String], now: OffsetDateTime) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(hosts.to_vec())?;
    p.distinguished_name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_else(|| "frr-composer-webhook".into()));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + CERT_VALIDITY;
    Ok((p.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
}

/// Expiry and names (DNS names and IP addresses, as text) of a PEM certificate.
fn inspect(pem_text: &str) -> Result<(OffsetDateTime, BTreeSet<String>), String> {
    use x509_parser::extensions::GeneralName;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => {
                    names.insert(d.to_string());
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*b).map(std::net::IpAddr::from).ok(),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok((cert.validity().not_after.to_datetime(), names))
}

/// Expiry and names of a stored certificate whose key can be read, or why it cannot be used.
fn stored_pair(cert: &str, key: &str, what: &str) -> Result<(OffsetDateTime, BTreeSet<String>), String> {
    let found = inspect(cert).map_err(|e| format!("the stored {what} cannot be read ({e})"))?;
    KeyPair::from_pem(key).map_err(|_| format!("the stored {what} key cannot be read"))?;
    Ok(found)
}

/// Whether a stored bundle can serve `hosts` at `now`, and if not, what to renew and why.
pub fn check(b: &Bundle, hosts: &[String], now: OffsetDateTime) -> Renewal {
    let ca_end = match stored_pair(&b.ca_cert, &b.ca_key, "CA") {
        Ok((end, _)) => end,
        Err(why) => return Renewal::All(why),
    };
    if ca_end - now < RENEW_BEFORE {
        return Renewal::All(format!("the CA expires on {}", ca_end.date()));
    }
    let (end, have) = match stored_pair(&b.cert, &b.key, "certificate") {
        Ok(v) => v,
        Err(why) => return Renewal::Certificate(why),
    };
    if end - now < RENEW_BEFORE {
        return Renewal::Certificate(format!("the certificate expires on {}", end.date()));
    }
    let want: BTreeSet<String> = hosts.iter().map(|h| h.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or_else(|_| h.clone())).collect();
    if have != want {
        return Renewal::Certificate(format!("the certificate is for {have:?}, not {want:?}"));
    }
    Renewal::Keep
}

/// The label that marks a Secret as frr-composer's to generate and renew. A Secret without it
/// (made by hand or by cert-manager) is served as it is and never rewritten.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "frr-composer");

fn managed_by_us(s: &Secret) -> bool {
    s.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY.0)).is_some_and(|v| v == MANAGED_BY.1)
}

fn secret_text(s: &Secret, key: &str) -> Option<String> {
    s.data.as_ref()?.get(key).and_then(|v| String::from_utf8(v.0.clone()).ok())
}

fn from_secret(s: &Secret) -> Option<Bundle> {
    let get = |k: &str| secret_text(s, k);
    Some(Bundle { ca_cert: get(CA_CERT)?, ca_key: get(CA_KEY)?, cert: get(TLS_CERT)?, key: get(TLS_KEY)? })
}

fn secret_data(b: &Bundle) -> std::collections::BTreeMap<String, ByteString> {
    [(CA_CERT, &b.ca_cert), (CA_KEY, &b.ca_key), (TLS_CERT, &b.cert), (TLS_KEY, &b.key)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

/// Where the webhook keeps its certificate.
#[derive(Clone, Debug)]
pub struct Managed {
    pub namespace: String,
    pub secret: String,
    pub webhook_configuration: String,
    pub hosts: Vec<String>,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Reads the Secret and returns a bundle that serves the hosts: the stored one, or a new one
/// written back (created, or replaced at the version read; a replica that loses the race
/// reads the winner's). A Secret without the [`MANAGED_BY`] label is only read.
pub async fn ensure_secret(client: &Client, m: &Managed) -> anyhow::Result<Bundle> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &m.namespace);
    for _ in 0..5 {
        let now = OffsetDateTime::now_utc();
        let current = api.get_opt(&m.secret).await.with_context(|| format!("reading Secret {}/{}", m.namespace, m.secret))?;
        let Some(mut secret) = current else {
            let b = new_bundle(&m.hosts, now).context("generating the webhook CA and certificate")?;
            let s = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(m.secret.clone()),
                    namespace: Some(m.namespace.clone()),
                    labels: Some([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())].into()),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".into()),
                data: Some(secret_data(&b)),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &s).await {
                Ok(_) => {
                    tracing::info!(secret = %format!("{}/{}", m.namespace, m.secret), hosts = ?m.hosts, "created the webhook CA and serving certificate");
                    return Ok(b);
                }
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e).with_context(|| format!("creating Secret {}/{}", m.namespace, m.secret)),
            }
        };
        if !managed_by_us(&secret) {
            // someone else's certificate: served as it is (its ca.crt, when it has one, still
            // goes into the caBundle)
            let get = |k: &str| secret_text(&secret, k);
            let (Some(cert), Some(key)) = (get(TLS_CERT), get(TLS_KEY)) else {
                return Err(anyhow!(
                    "Secret {}/{} is not frr-composer's (no label {}={}) and lacks {TLS_CERT} or {TLS_KEY}",
                    m.namespace,
                    m.secret,
                    MANAGED_BY.0,
                    MANAGED_BY.1
                ));
            };
            return Ok(Bundle { ca_cert: get(CA_CERT).unwrap_or_default(), ca_key: String::new(), cert, key });
        }
        let renewal = match from_secret(&secret) {
            Some(b) => match check(&b, &m.hosts, now) {
                Renewal::Keep => return Ok(b),
                Renewal::Certificate(why) => (renew_certificate(&b, &m.hosts, now), why),
                Renewal::All(why) => (new_bundle(&m.hosts, now), why),
            },
            None => (new_bundle(&m.hosts, now), format!("the Secret lacks one of {CA_CERT}, {CA_KEY}, {TLS_CERT}, {TLS_KEY}")),
        };
        let (b, why) = renewal;
        let b = b.context("renewing the webhook certificate")?;
        secret.data = Some(secret_data(&b));
        match api.replace(&m.secret, &PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(secret = %format!("{}/{}", m.namespace, m.secret), reason = %why, "renewed the webhook certificate");
                return Ok(b);
            }
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("updating Secret {}/{}", m.namespace, m.secret)),
        }
    }
    Err(anyhow!("Secret {}/{} kept changing while it was being written", m.namespace, m.secret))
}

/// Puts the CA into every webhook of the configuration. No CA (someone else's Secret without
/// one, whose caBundle is theirs to manage): nothing to do.
pub async fn ensure_ca_bundle(client: &Client, name: &str, ca_pem: &str) -> anyhow::Result<()> {
    if ca_pem.is_empty() {
        return Ok(());
    }
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    for _ in 0..5 {
        let mut vwc = api.get(name).await.with_context(|| format!("reading ValidatingWebhookConfiguration {name}"))?;
        let want = ByteString(ca_pem.as_bytes().to_vec());
        let mut changed = false;
        for w in vwc.webhooks.iter_mut().flatten() {
            if w.client_config.ca_bundle.as_ref() != Some(&want) {
                w.client_config.ca_bundle = Some(want.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        match api.replace(name, &PostParams::default(), &vwc).await {
            Ok(_) => {
                tracing::info!(configuration = name, "put the webhook CA into the caBundle");
                return Ok(());
            }
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("updating ValidatingWebhookConfiguration {name}")),
        }
    }
    Err(anyhow!("ValidatingWebhookConfiguration {name} kept changing while it was being written"))
}

/// The serving certificate of the TLS listener, replaceable while it serves.
#[derive(Debug)]
pub struct Resolver(RwLock<Arc<rustls::sign::CertifiedKey>>);

impl Resolver {
    pub fn new(cert_pem: &str, key_pem: &str) -> anyhow::Result<Resolver> {
        Ok(Resolver(RwLock::new(Arc::new(certified_key(cert_pem, key_pem)?))))
    }

    pub fn set(&self, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        let k = Arc::new(certified_key(cert_pem, key_pem)?);
        *self.0.write().map_err(|_| anyhow!("certificate lock poisoned"))? = k;
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for Resolver {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> anyhow::Result<rustls::sign::CertifiedKey> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| anyhow!("serving certificate: {e}"))?;
    if certs.is_empty() {
        return Err(anyhow!("serving certificate: no certificate in the PEM text"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| anyhow!("serving key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| anyhow!("serving key: {e}"))?;
    Ok(rustls::sign::CertifiedKey::new(certs, signing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["frr-composer-webhook.frr-k8s-system.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn a_new_bundle_is_kept_and_serves_tls() {
        let now = OffsetDateTime::now_utc();
        let b = new_bundle(&hosts(), now).unwrap();
        assert_eq!(check(&b, &hosts(), now), Renewal::Keep);
        assert!(b.ca_cert.contains("BEGIN CERTIFICATE") && b.key.contains("PRIVATE KEY"));
        Resolver::new(&b.cert, &b.key).unwrap();
        // the Debug form shows no key material
        assert!(!format!("{b:?}").contains("PRIVATE"));
    }

    #[test]
    fn renewal_reasons() {
        let now = OffsetDateTime::now_utc();
        let b = new_bundle(&hosts(), now).unwrap();
        // eleven months later: the serving certificate, not the CA
        let later = now + Duration::days(340);
        let Renewal::Certificate(why) = check(&b, &hosts(), later) else { panic!("{:?}", check(&b, &hosts(), later)) };
        assert!(why.contains("expires"), "{why}");
        let renewed = renew_certificate(&b, &hosts(), later).unwrap();
        assert_eq!((renewed.ca_cert.as_str(), renewed.ca_key.as_str()), (b.ca_cert.as_str(), b.ca_key.as_str()));
        assert_ne!(renewed.cert, b.cert);
        assert_eq!(check(&renewed, &hosts(), later), Renewal::Keep);
        // another host name
        let other = vec!["webhook.example.svc".to_string()];
        assert!(matches!(check(&b, &other, now), Renewal::Certificate(w) if w.contains("webhook.example.svc")));
        // the CA near its end
        assert!(matches!(check(&b, &hosts(), now + CA_VALIDITY - Duration::days(1)), Renewal::All(w) if w.contains("CA expires")));
        // damaged text
        let broken = Bundle { ca_key: "junk".into(), ..b.clone() };
        assert!(matches!(check(&broken, &hosts(), now), Renewal::All(_)));
        let broken = Bundle { cert: "junk".into(), ..b };
        assert!(matches!(check(&broken, &hosts(), now), Renewal::Certificate(_)));
    }
}
