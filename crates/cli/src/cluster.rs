//! Connecting to the cluster from the command line's options.

use crate::api_retry::ApiRetry;
use crate::cli::ClusterArguments;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The kubeconfig file could not be read.
    #[error("failed to read kubeconfig {}", path.display())]
    ReadKubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig does not describe a usable cluster.
    #[error("failed to load the cluster configuration")]
    Configure(#[source] kube::config::KubeconfigError),
    /// No configuration was found.
    #[error("failed to find a cluster configuration (tried $KUBECONFIG, ~/.kube/config and the in-cluster account)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("failed to create the Kubernetes client")]
    Client(#[source] kube::Error),
}

/// A client for the cluster the options name.
pub(crate) async fn connect(arguments: &ClusterArguments) -> Result<kube::Client, ConnectError> {
    let options = KubeConfigOptions { context: arguments.context.clone(), ..KubeConfigOptions::default() };
    let config = match &arguments.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|source| ConnectError::ReadKubeconfig { path: path.clone(), source })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(ConnectError::Configure)?
        }
        None if arguments.context.is_some() => {
            kube::Config::from_kubeconfig(&options).await.map_err(ConnectError::Configure)?
        }
        None => kube::Config::infer().await.map_err(ConnectError::Infer)?,
    };
    client_with_retries(config)
}

/// A client whose requests are retried as [`ApiRetry`] says (kube's own retries leave out 500).
fn client_with_retries(mut config: kube::Config) -> Result<kube::Client, ConnectError> {
    config.default_retry = false;
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(ConnectError::Client)?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(ApiRetry::default()))
        .build();
    Ok(client)
}
