//! TLS for the peer transport (mutual) and the client port (server-authenticated): loading
//! PEM files into tonic's configurations, and throw-away certificates for local clusters and
//! tests (`brisk certs`, `brisk dev`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ClientTlsFiles, PeerTlsFiles};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn identity(cert: &Path, key: &Path) -> Result<Identity> {
    Ok(Identity::from_pem(
        read(cert, "certificate")?,
        read(key, "private key")?,
    ))
}

/// How long an outgoing connection may take to complete its TLS handshake. A paused member
/// accepts TCP (its kernel does) and never answers the handshake; without a bound the
/// connection attempt, and the task that holds it, would wait until the member resumes.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The peer listener's configuration (it requires a client certificate chaining to the CA)
/// and the one this node connects to its peers with (its certificate as client identity,
/// the same CA to check theirs).
pub fn peer(files: &PeerTlsFiles) -> Result<(ServerTlsConfig, ClientTlsConfig)> {
    let id = identity(&files.cert, &files.key)?;
    let ca = Certificate::from_pem(read(&files.ca, "CA certificate")?);
    let server = ServerTlsConfig::new()
        .identity(id.clone())
        .client_ca_root(ca.clone());
    let client = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(id)
        .timeout(HANDSHAKE_TIMEOUT);
    Ok((server, client))
}

/// The client port's configuration, and how this node reaches other members' client ports
/// (forwarding to the leader, joining).
pub fn client(files: &ClientTlsFiles) -> Result<(ServerTlsConfig, ClientTlsConfig)> {
    let server = ServerTlsConfig::new().identity(identity(&files.cert, &files.key)?);
    let client = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca, "CA certificate")?))
        .timeout(HANDSHAKE_TIMEOUT);
    Ok((server, client))
}

/// Names of the files [`generate`] writes into its directory.
pub const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

pub fn cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pem"))
}

pub fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}

/// Writes a new CA (`ca.pem`, `ca.key`) and, for each name, a certificate and key signed by
/// it (`NAME.pem`, `NAME.key`) valid for `hosts` as server and as client (a member is both
/// to its peers). Refuses a directory that already holds a CA.
pub fn generate(dir: &Path, names: &[String], hosts: &[String]) -> Result<()> {
    if dir.join(CA_CERT).exists() {
        bail!(
            "{} already holds a CA; use another directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "brisk throw-away CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    for name in names {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .with_context(|| format!("certificate hosts {hosts:?}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&key_path(dir, name), key.serialize_pem().as_bytes())?;
        write(&cert_path(dir, name), cert.pem().as_bytes())?;
    }
    write_private(&dir.join(CA_KEY), issuer.key().serialize_pem().as_bytes())?;
    write(&dir.join(CA_CERT), ca_cert.pem().as_bytes())?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Private keys are readable by their owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Default hosts of generated certificates: what a local cluster's addresses use.
pub fn default_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    /// Directory to write into (must not hold a CA yet).
    #[arg(long)]
    pub dir: PathBuf,
    /// A certificate to issue, written as NAME.pem and NAME.key (repeatable).
    #[arg(long = "name", required = true)]
    pub names: Vec<String>,
    /// Host names and IP addresses the certificates are valid for (repeatable; default
    /// localhost, 127.0.0.1 and ::1).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

/// `brisk certs`: a throw-away CA and certificates for trying out TLS.
pub fn run(a: CertsArgs) -> Result<std::process::ExitCode> {
    let hosts = if a.hosts.is_empty() {
        default_hosts()
    } else {
        a.hosts
    };
    generate(&a.dir, &a.names, &hosts)?;
    println!(
        "wrote {} and {} certificate(s) for {} into {}",
        CA_CERT,
        a.names.len(),
        hosts.join(", "),
        a.dir.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_load_and_a_second_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("certs");
        generate(&d, &["node".into()], &default_hosts()).unwrap();
        let files = PeerTlsFiles {
            cert: cert_path(&d, "node"),
            key: key_path(&d, "node"),
            ca: d.join(CA_CERT),
        };
        peer(&files).unwrap();
        assert!(generate(&d, &["other".into()], &default_hosts()).is_err());
        assert!(!cert_path(&d, "other").exists());
        let missing = PeerTlsFiles {
            ca: d.join("nope.pem"),
            ..files
        };
        let err = peer(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");
    }
}
