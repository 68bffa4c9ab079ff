//! TLS for the frontends: a rustls server configuration from PEM files.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// A server configuration presenting the certificate chain in `cert` with the key in `key`
/// (PEM). The error says which file is wrong.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| format!("{} does not fit {}: {e}", key.display(), cert.display()))?;
    Ok(Arc::new(config))
}

/// A client connection, before or after it switched to TLS.
pub enum MaybeTls {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl MaybeTls {
    /// Switches a plain connection to TLS (the server side of the TLS handshake).
    pub async fn accept(self, config: Arc<ServerConfig>) -> std::io::Result<MaybeTls> {
        match self {
            MaybeTls::Plain(tcp) => {
                let tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
                Ok(MaybeTls::Tls(Box::new(tls)))
            }
            tls => Ok(tls),
        }
    }

    /// The protocol version and cipher suite negotiated (`None` on a plain connection), as
    /// rustls names them, e.g. `TLSv1_3 TLS13_AES_256_GCM_SHA384`.
    pub fn cipher(&self) -> Option<String> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(tls) => {
                let conn = tls.get_ref().1;
                let version = conn.protocol_version().map(|v| format!("{v:?}"))?;
                let suite = conn
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))?;
                Some(format!("{version} {suite}"))
            }
        }
    }
}

impl tokio::io::AsyncRead for MaybeTls {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for MaybeTls {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
