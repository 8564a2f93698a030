//! TLS on client and peer links (rustls, with the `ring` crypto provider).
//!
//! ## The problem
//!
//! Without TLS, anyone on the network reads every value, and anyone who reaches the peer port
//! and names a member in the handshake is taken for that member. TLS answers both: clients
//! get confidentiality and know they reached the cluster; peers prove who they are.
//!
//! ## How it works, in numbered steps
//!
//! 1. **One CA per cluster.** Every node holds `ca.pem` (the cluster's CA), its own
//!    certificate and key. A node's certificate names it: SAN DNS `node-<id>` (see
//!    [`member_name`]), plus `localhost` and `127.0.0.1` for clients that connect locally.
//!    `quorate certs` writes such a set for development.
//! 2. **Clients** (when `[tls] clients = true`): the client port speaks TLS only. The first
//!    byte of a TLS connection is 0x16 (a handshake record); a RESP command begins with `*` or
//!    a letter. A connection whose first byte is anything but 0x16 is answered
//!    `-ERR this port accepts TLS connections only` in plain text and closed, so a client
//!    that forgot `--tls` learns why instead of hanging. Client certificates are not asked
//!    for; clients authenticate with AUTH (see [`crate::auth`]).
//! 3. **Peers** (when `[tls] peers = true`): mutual TLS. The dialer checks that the acceptor's
//!    certificate is signed by the CA and names `node-<id>` of the member it dialed (ordinary
//!    server-name verification). The acceptor requires a client certificate signed by the CA
//!    and, once the handshake [`crate::transport::Hello`] says which member is calling, checks
//!    that the certificate names *that* member. A certificate from another CA, or one naming
//!    another member, is refused, logged with the reason and counted
//!    (`quorate_peer_tls_refused_total`).
//!
//! ## Deliberately left out
//!
//! Certificate revocation (CRLs, OCSP) and reloading certificates without a restart: rotate
//! by restarting nodes one at a time. Client-certificate authentication of clients.

use quorate_core::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The first byte of every TLS connection: a handshake record.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// What a plain-text client on a TLS-only port is told before it is closed.
pub const PLAIN_REFUSAL: &[u8] = b"-ERR this port accepts TLS connections only\r\n";

/// The `[tls]` section of a node's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This node's certificate (PEM; the chain, leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster CA that signs every member's certificate (PEM).
    pub ca: PathBuf,
    /// Whether the client port speaks TLS only.
    #[serde(default = "yes")]
    pub clients: bool,
    /// Whether peers speak mutual TLS.
    #[serde(default = "yes")]
    pub peers: bool,
}

fn yes() -> bool {
    true
}

impl TlsConfig {
    /// The files `quorate certs` writes in `dir` for node `id`.
    pub fn from_dir(dir: &Path, id: u64) -> TlsConfig {
        TlsConfig {
            cert: dir.join(format!("node-{id}.pem")),
            key: dir.join(format!("node-{id}-key.pem")),
            ca: dir.join("ca.pem"),
            clients: true,
            peers: true,
        }
    }
}

/// The DNS name a member's certificate must carry: `node-<id>`.
pub fn member_name(id: NodeId) -> String {
    format!("node-{}", id.0)
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "cannot read {what} {path}: {source} (run `quorate certs --out DIR` for a development set)"
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what} {path} holds no PEM {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// Acceptors and a connector built from a [`TlsConfig`].
#[derive(Clone)]
pub struct Tls {
    /// For the client port, if clients use TLS.
    pub clients: Option<TlsAcceptor>,
    /// For the peer port, if peers use TLS: demands a certificate signed by the CA.
    pub peer_acceptor: Option<TlsAcceptor>,
    /// For dialing peers, if peers use TLS: presents this node's certificate.
    pub peer_connector: Option<TlsConnector>,
}

impl Tls {
    /// No TLS anywhere: plain TCP, as without a `[tls]` section.
    pub fn none() -> Tls {
        Tls {
            clients: None,
            peer_acceptor: None,
            peer_connector: None,
        }
    }

    /// Reads the certificate, key and CA and builds the TLS contexts the config asks for.
    pub fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        // rustls 0.23.48 deprecates the ring provider to steer users to aws-lc-rs (which
        // has post-quantum key exchange); aws-lc-rs needs cmake and nasm to build, ring not.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certs(&config.cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|source| TlsError::Read {
            what: "private key",
            path: config.key.clone(),
            source,
        })?;
        let mut roots = RootCertStore::empty();
        for ca in certs(&config.ca, "CA certificate")? {
            roots.add(ca).map_err(rustls_error)?;
        }
        let roots = Arc::new(roots);
        let server = || {
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(rustls_error)
        };
        let clients = match config.clients {
            true => Some(
                server()?
                    .with_no_client_auth()
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(rustls_error)?,
            ),
            false => None,
        };
        let (peer_acceptor, peer_connector) = match config.peers {
            true => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .build()
                        .map_err(rustls_error)?;
                let acceptor = server()?
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(rustls_error)?;
                let connector = ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(rustls_error)?
                    .with_root_certificates(roots)
                    .with_client_auth_cert(chain, key)
                    .map_err(rustls_error)?;
                (Some(acceptor), Some(connector))
            }
            false => (None, None),
        };
        Ok(Tls {
            clients: clients.map(|c| TlsAcceptor::from(Arc::new(c))),
            peer_acceptor: peer_acceptor.map(|c| TlsAcceptor::from(Arc::new(c))),
            peer_connector: peer_connector.map(|c| TlsConnector::from(Arc::new(c))),
        })
    }
}

/// What a client needs to reach a TLS client port: trust in the cluster CA at `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    #[allow(deprecated)] // See `Tls::load`.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in certs(ca, "CA certificate")? {
        roots.add(cert).map_err(rustls_error)?;
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        what,
        path: path.into(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.into(),
        });
    }
    Ok(certs)
}

fn rustls_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Rustls(e.to_string())
}

/// The server name a dialer expects the certificate of member `id` to carry.
pub fn server_name_of(id: NodeId) -> ServerName<'static> {
    ServerName::try_from(member_name(id)).expect("node-<number> is a valid DNS name")
}

/// Checks that `cert` (already verified against the CA) names member `id`.
pub fn check_names_member(cert: &CertificateDer<'_>, id: NodeId) -> Result<(), String> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("its certificate cannot be parsed ({e})"))?;
    let name = server_name_of(id);
    parsed.verify_is_valid_for_subject_name(&name).map_err(|_| {
        format!(
            "its certificate does not name {} (claims to be {id}; a certificate issued to \
             another member?)",
            member_name(id)
        )
    })
}

/// A connection that may or may not be wrapped in TLS.
pub enum Stream {
    Plain(TcpStream),
    /// Accepted (client port, or inbound peer).
    Accepted(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Dialed (outbound peer).
    Dialed(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The certificate the other side presented, if any (inbound peers).
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        match self {
            Stream::Accepted(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.clone().into_owned()),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Stream::Plain(_) => "plain",
            Stream::Accepted(_) => "tls (accepted)",
            Stream::Dialed(_) => "tls (dialed)",
        };
        write!(f, "Stream({kind})")
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Accepted($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Stream::Dialed($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Accepted(s) => s.is_write_vectored(),
            Stream::Dialed(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// Splits a stream into halves that can be used from two tasks. Plain TCP splits without a
/// lock, as before TLS existed; a TLS stream shares one session between its halves.
pub fn split(stream: Stream) -> (ReadHalf, WriteHalf) {
    match stream {
        Stream::Plain(tcp) => {
            let (r, w) = tcp.into_split();
            (ReadHalf::Plain(r), WriteHalf::Plain(w))
        }
        tls => {
            let (r, w) = tokio::io::split(tls);
            (ReadHalf::Tls(r), WriteHalf::Tls(w))
        }
    }
}

/// The reading half of a [`Stream`].
pub enum ReadHalf {
    Plain(tokio::net::tcp::OwnedReadHalf),
    Tls(tokio::io::ReadHalf<Stream>),
}

/// The writing half of a [`Stream`].
pub enum WriteHalf {
    Plain(tokio::net::tcp::OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Stream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
