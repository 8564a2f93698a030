//! `quorate certs`: a development CA and a certificate per node, for `serve --tls DIR`.
//!
//! Each node's certificate names it the way the peer transport checks (SAN DNS `node-<id>`,
//! see `quorate_server::tls`), plus `localhost` and `127.0.0.1` so that local clients
//! (`redis-cli --tls --cacert DIR/ca.pem`) can verify it, and may serve both as a server and
//! as a client certificate (peers present it when they dial). Keys are written readable by
//! their owner only. For production, issue certificates from your own CA with the same
//! names.

use anyhow::{bail, Context};
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Where to write ca.pem, ca-key.pem, node-N.pem and node-N-key.pem (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How many nodes to issue certificates for (ids 1 to N).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
}

pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    write_set(&args.out, args.nodes)?;
    println!(
        "wrote a development CA and certificates for nodes 1 to {} in {}",
        args.nodes,
        args.out.display()
    );
    println!(
        "serve with: quorate serve --tls {} ...; connect with: redis-cli --tls --cacert {}/ca.pem -p PORT",
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a CA and certificates for nodes `1..=nodes` into `dir`; refuses to overwrite.
pub fn write_set(dir: &Path, nodes: u64) -> anyhow::Result<()> {
    if !(1..=99).contains(&nodes) {
        bail!("--nodes must be between 1 and 99, not {nodes}");
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if dir.join("ca.pem").exists() {
        bail!(
            "{} already holds ca.pem; remove the directory's certificates or choose another --out",
            dir.display()
        );
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "quorate development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    write(&dir.join("ca.pem"), &ca_cert.pem(), 0o644)?;
    write(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), 0o600)?;
    for id in 1..=nodes {
        let name = format!("node-{id}");
        let mut node = CertificateParams::new(vec![
            name.clone(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])?;
        node.distinguished_name.push(DnType::CommonName, &name);
        node.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        node.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = node.signed_by(&key, &ca_cert, &ca_key)?;
        write(&dir.join(format!("{name}.pem")), &cert.pem(), 0o644)?;
        write(
            &dir.join(format!("{name}-key.pem")),
            &key.serialize_pem(),
            0o600,
        )?;
    }
    Ok(())
}

/// Creates `path` with `mode` (keys never exist, even briefly, readable by others).
fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
