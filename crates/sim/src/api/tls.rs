//! The API over TLS, for clients with credentials: kubectl sends a bearer token only over TLS (client-go drops user
//! credentials for `http://` servers), so ServiceAccount kubeconfigs point at this listener. The simulator makes its
//! own certificate authority at start and a server certificate for `127.0.0.1` and `localhost` signed by it.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The simulator's certificate authority and the acceptor of its TLS listener.
#[derive(Clone)]
pub(crate) struct Tls {
    /// The CA certificate, PEM: what a kubeconfig's `certificate-authority-data` carries.
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("failed to make the simulator's TLS certificates: {0}")]
pub struct TlsError(String);

impl Tls {
    /// A fresh CA and server certificate.
    pub(crate) fn generate() -> Result<Tls, TlsError> {
        let error = |error: &dyn std::fmt::Display| TlsError(error.to_string());
        let ca_key = KeyPair::generate().map_err(|e| error(&e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| error(&e))?;
        ca_params.distinguished_name.push(DnType::CommonName, "fledge-sim CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(|e| error(&e))?;

        let server_key = KeyPair::generate().map_err(|e| error(&e))?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| error(&e))?;
        server_params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        server_params.distinguished_name.push(DnType::CommonName, "fledge-sim");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server = server_params.signed_by(&server_key, &issuer).map_err(|e| error(&e))?;

        let chain = vec![server.der().clone(), ca.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).map_err(|e| error(&e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| error(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| error(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { ca_pem: ca.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}
