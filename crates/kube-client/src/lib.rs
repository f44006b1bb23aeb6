//! fledge-kube-client: the one Kubernetes client stack every fledge adapter (and its tests) runs on.
//!
//! ```text
//!  adapter ─▶ kube::Client ─▶ retry (30 s budget) ─▶ write fence (lock unconfirmed: writes wait; lost: refused)
//!                         ─▶ buffer ─▶ attempt (10 s to answer, 20 s to the whole body) ─▶ kube's stack
//!  every request: User-Agent fledge/<version> (run <run id>)
//! ```
//!
//! [`connect`] finds the configuration (a kubeconfig file and context, `$KUBECONFIG`, `~/.kube/config`, or the
//! in-cluster service account); [`client`] builds the stack on a configuration, which is how tests reach the
//! simulator (`kube::Config::new(url)`).

mod attempt;
mod discovery;
mod fence;
pub mod guarded;
mod retry;

pub use attempt::{ANSWER_DEADLINE, AttemptError, AttemptLayer, BODY_DEADLINE};
pub use discovery::optional_resource;
pub use fence::{FenceLayer, LockLost, WRITE_PATIENCE, WriteFence};
pub use guarded::{GuardedError, Written, conflict_backoff, guarded_patch};
pub use retry::{ApiRetry, REQUEST_BUDGET};

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

/// How long connecting to the API server may take, per attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the cluster is, and who is asking.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// A kubeconfig file; default `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; default its current one.
    pub context: Option<String>,
    /// Named in the user agent (`fledge/0.1.0 (run host-1234-abcdef)`), so the API server's audit log tells runs apart.
    pub run_id: Option<String>,
    /// The fence writes must pass; default an open one that is never closed.
    pub fence: WriteFence,
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file could not be read.
    #[error("failed to read kubeconfig {}", path.display())]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
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
    /// The API server's URL is not a URL.
    #[error("`{url}` is not a URL of a Kubernetes API server")]
    Url {
        /// What was given.
        url: String,
        /// Why it is not a URL.
        #[source]
        source: http::uri::InvalidUri,
    },
}

/// The clients of a run that takes the release lock: every adapter's, behind the fence, and the lock's own, which
/// is not (its renewals are what open the fence again) and has connections of its own, so renewals never queue behind
/// the adapters' requests.
#[derive(Clone)]
pub struct Clients {
    /// For every adapter: its writes pass `options.fence`.
    pub fenced: kube::Client,
    /// For the lock only.
    pub lock: kube::Client,
}

/// The clients for the cluster `options` name.
pub async fn connect_clients(options: &ConnectOptions) -> Result<Clients, ConnectError> {
    let config = configuration(options).await?;
    let unfenced = ConnectOptions { fence: WriteFence::new(), ..options.clone() };
    Ok(Clients { fenced: client(config.clone(), options)?, lock: client(config, &unfenced)? })
}

/// The clients for the API server at `url` without credentials (the simulator).
pub fn clients_for_url(url: &str, options: &ConnectOptions) -> Result<Clients, ConnectError> {
    let unfenced = ConnectOptions { fence: WriteFence::new(), ..options.clone() };
    Ok(Clients { fenced: client_for_url(url, options)?, lock: client_for_url(url, &unfenced)? })
}

/// A client for the cluster `options` name.
pub async fn connect(options: &ConnectOptions) -> Result<kube::Client, ConnectError> {
    client(configuration(options).await?, options)
}

/// The configuration `options` name.
async fn configuration(options: &ConnectOptions) -> Result<kube::Config, ConnectError> {
    let kubeconfig_options = KubeConfigOptions { context: options.context.clone(), ..KubeConfigOptions::default() };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|source| ConnectError::ReadKubeconfig { path: path.clone(), source })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kubeconfig_options)
                .await
                .map_err(ConnectError::Configure)?
        }
        None if options.context.is_some() => {
            kube::Config::from_kubeconfig(&kubeconfig_options).await.map_err(ConnectError::Configure)?
        }
        None => kube::Config::infer().await.map_err(ConnectError::Infer)?,
    };
    Ok(config)
}

/// The user agent of this process.
pub fn user_agent(run_id: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match run_id {
        Some(run) => format!("fledge/{version} (run {run})"),
        None => format!("fledge/{version}"),
    }
}

/// fledge's client stack on `config`: retries, attempt deadlines, the write fence and the user agent.
pub fn client(mut config: kube::Config, options: &ConnectOptions) -> Result<kube::Client, ConnectError> {
    // kube's own retries leave out 500 and transport failures; ours cover them, within a budget.
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    if let Ok(agent) = http::HeaderValue::from_str(&user_agent(options.run_id.as_deref())) {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(ConnectError::Client)?
        .with_layer(&AttemptLayer::default())
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&FenceLayer::new(options.fence.clone()))
        .with_layer(&tower::retry::RetryLayer::new(ApiRetry::default()))
        .build();
    Ok(client)
}

/// fledge's client stack for the API server at `url` without credentials (the simulator), with `options`.
pub fn client_for_url(url: &str, options: &ConnectOptions) -> Result<kube::Client, ConnectError> {
    let uri = url.parse().map_err(|source| ConnectError::Url { url: url.to_owned(), source })?;
    client(kube::Config::new(uri), options)
}
