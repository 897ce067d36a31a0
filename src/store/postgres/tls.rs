//! TLS to PostgreSQL, with libpq's URL parameters: `sslmode` and `sslrootcert`.
//!
//! tokio-postgres itself reads `sslmode` but knows only `disable`, `prefer` and `require`, and
//! rejects `sslrootcert`; both are taken out of the URL here and turned into a rustls
//! configuration (pure Rust, ring for the cryptography: no OpenSSL to build against or keep
//! patched on the hosts). The modes mean what they mean to libpq:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default; libpq's `allow` is read as this) | when the server offers TLS | no |
//! | `require` | always | no (as `verify-ca` when `sslrootcert` is given, like libpq) |
//! | `verify-ca` | always | signed by a trusted CA |
//! | `verify-full` | always | signed by a trusted CA and issued for the host connected to |
//!
//! Trusted CAs for the `verify-*` modes: the PEM file `sslrootcert` names, `sslrootcert=system`
//! for the operating system's store, or — as libpq — `~/.postgresql/root.crt` when neither is
//! given. Without any of them start-up fails saying so, rather than trusting nothing silently.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A PostgreSQL URL made ready to connect: tokio-postgres's configuration and the TLS
/// connector, built once (the CA file is read at start-up, not on every reconnect).
#[derive(Clone)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    /// None: plain connections only (`sslmode=disable`).
    pub tls: Option<MakeRustlsConnect>,
    pub mode: Mode,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// `sslrootcert`: where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCerts {
    File(PathBuf),
    System,
}

impl PgTarget {
    /// Reads a `postgres://…` URL; every error names the parameter at fault.
    pub fn parse(url: &str) -> Result<PgTarget, String> {
        let (rest, mode, roots) = split_tls_params(url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
        let roots = match (mode, roots) {
            (_, Some(roots)) => Some(roots),
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                let default = std::env::var_os("HOME")
                    .map(|home| Path::new(&home).join(".postgresql/root.crt"))
                    .filter(|path| path.exists())
                    .ok_or_else(|| {
                        "sslmode=verify-ca and verify-full need the CA that signed the server's \
                         certificate: add sslrootcert=/path/to/ca.pem (or sslrootcert=system for \
                         the operating system's trusted CAs)"
                            .to_string()
                    })?;
                Some(RootCerts::File(default))
            }
            _ => None,
        };
        // libpq: with a root certificate, `require` verifies the chain like `verify-ca`.
        let verify = match (mode, &roots) {
            (Mode::Require, Some(_)) => Mode::VerifyCa,
            (mode, _) => mode,
        };
        let tls = match verify {
            Mode::Disable => None,
            Mode::Prefer | Mode::Require => Some(client_config(Arc::new(NoVerification(
                provider().signature_verification_algorithms,
            )))?),
            Mode::VerifyCa | Mode::VerifyFull => {
                // Set above for every verifying mode; an error rather than a panic all the same.
                let Some(roots) = roots.as_ref() else {
                    return Err("sslrootcert is missing".into());
                };
                let roots = load_roots(roots)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
                let verifier: Arc<dyn ServerCertVerifier> = if verify == Mode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                };
                Some(client_config(verifier)?)
            }
        };
        config.ssl_mode(match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        Ok(PgTarget {
            config,
            tls: tls.map(MakeRustlsConnect::new),
            mode,
        })
    }
}

/// Takes `sslmode` and `sslrootcert` out of the URL's query.
fn split_tls_params(url: &str) -> Result<(String, Mode, Option<RootCerts>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Mode::Prefer, None));
    };
    let mut mode = Mode::Prefer;
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match percent_decode(value)?.as_str() {
                    "disable" => Mode::Disable,
                    "prefer" | "allow" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, \
                             verify-full"
                        ))
                    }
                }
            }
            "sslrootcert" => {
                let value = percent_decode(value)?;
                roots = Some(match value.as_str() {
                    "" => return Err("sslrootcert is empty".into()),
                    "system" => RootCerts::System,
                    _ => RootCerts::File(PathBuf::from(value)),
                });
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, roots))
}

/// `%2F` → `/`: a path in a URL parameter may be percent-encoded.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once decoded"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn client_config(verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn load_roots(roots: &RootCerts) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {} holds no usable PEM certificate",
                    path.display()
                ));
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert=system: no trusted CA found in the operating system's store ({:?})",
                    found.errors
                ));
            }
        }
    }
    Ok(Arc::new(store))
}

/// `prefer` and `require` without a root certificate: encrypted, but the server is not
/// authenticated (libpq's meaning of these modes). The handshake signatures are still checked,
/// so the session is bound to the certificate's key.
#[derive(Debug)]
struct NoVerification(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA, whatever host name the certificate names.
/// The WebPKI verifier checks the chain before the name, so a name mismatch is the only error
/// left to forgive.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let (rest, mode, roots) = split_tls_params(
            "postgres://u@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(mode, Mode::VerifyFull);
        assert_eq!(roots, Some(RootCerts::File("/etc/ca.pem".into())));
        let (rest, mode, roots) = split_tls_params("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), mode, roots),
            ("postgres://u@h/db", Mode::Prefer, None)
        );
        let (_, mode, roots) =
            split_tls_params("postgres://h/d?sslmode=require&sslrootcert=system").unwrap();
        assert_eq!((mode, roots), (Mode::Require, Some(RootCerts::System)));
    }

    #[test]
    fn bad_tls_parameters_are_named() {
        let e = PgTarget::parse("postgres://h/d?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        let e = PgTarget::parse("postgres://h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem")
            .unwrap_err();
        assert!(
            e.contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{e}"
        );
        let e = PgTarget::parse("postgres://h/d?sslrootcert=").unwrap_err();
        assert!(e.contains("sslrootcert is empty"), "{e}");
        let e = PgTarget::parse("postgres://h/d?sslmode=%zz").unwrap_err();
        assert!(e.contains("percent-encoding"), "{e}");
    }

    #[test]
    fn modes_choose_the_connector() {
        assert!(PgTarget::parse("postgres://h/d?sslmode=disable")
            .unwrap()
            .tls
            .is_none());
        let prefer = PgTarget::parse("postgres://h/d").unwrap();
        assert_eq!(prefer.mode, Mode::Prefer);
        assert!(prefer.tls.is_some());
        assert_eq!(prefer.config.get_ssl_mode(), SslMode::Prefer);
        let full = PgTarget::parse("postgres://h/d?sslmode=verify-full&sslrootcert=system");
        // A machine without any system CA cannot build it; where it can, TLS is required.
        if let Ok(full) = full {
            assert_eq!(full.config.get_ssl_mode(), SslMode::Require);
        }
    }
}
