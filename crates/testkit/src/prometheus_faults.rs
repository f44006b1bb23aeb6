//! A proxy in front of a real Prometheus that answers as a failing one does, for the fault matrix: slowly (past the
//! client's query timeout), with a `warnings` field in an otherwise good answer, or with garbage.
//!
//! ```text
//!  fledge ─▶ PrometheusFaults (127.0.0.1:port) ─▶ Prometheus
//!              mode: pass │ slow(d) │ warnings │ garbage
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the proxy answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrometheusMode {
    /// As Prometheus answers.
    Pass,
    /// As Prometheus answers, after this long.
    Slow(Duration),
    /// As Prometheus answers, with `"warnings"` added to a JSON answer.
    Warnings,
    /// `200 OK` with a JSON content type and a body that is not JSON.
    Garbage,
}

/// The proxy; stops when dropped.
pub struct PrometheusFaults {
    /// Its base URL, to give fledge instead of Prometheus'.
    pub url: String,
    mode: Arc<Mutex<PrometheusMode>>,
    answered: Answered,
    task: tokio::task::JoinHandle<()>,
}

/// How many answers were given in each mode.
type Answered = Arc<Mutex<std::collections::HashMap<PrometheusMode, u64>>>;

impl Drop for PrometheusFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PrometheusFaults {
    /// A proxy to the Prometheus at `upstream` (`http://host:port`), passing answers through until told otherwise.
    pub async fn start(upstream: &str) -> PrometheusFaults {
        let mode = Arc::new(Mutex::new(PrometheusMode::Pass));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let answered = Answered::default();
        let state = (upstream.trim_end_matches('/').to_owned(), mode.clone(), reqwest::Client::new(), answered.clone());
        let router = axum::Router::new().fallback(forward).with_state(Arc::new(state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        PrometheusFaults { url, mode, answered, task }
    }

    /// How many answers were given in `mode` so far.
    pub fn answered(&self, mode: PrometheusMode) -> u64 {
        self.answered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&mode).copied().unwrap_or(0)
    }

    /// Answers as `mode` says from now on.
    pub fn set(&self, mode: PrometheusMode) {
        *self.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = mode;
    }
}

type State = Arc<(String, Arc<Mutex<PrometheusMode>>, reqwest::Client, Answered)>;

async fn forward(
    axum::extract::State(state): axum::extract::State<State>,
    uri: axum::http::Uri,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (upstream, mode, client, answered) = &*state;
    let mode = *mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *answered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(mode).or_default() += 1;
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    if mode == PrometheusMode::Garbage {
        return (json, "<html><body>502 Bad Gateway</body></html>\u{0}\u{1}{\"status\":").into_response();
    }
    if let PrometheusMode::Slow(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let mut request = client.request(method, format!("{upstream}{path}")).body(body);
    if let Some(content_type) = headers.get(axum::http::header::CONTENT_TYPE) {
        request = request.header(axum::http::header::CONTENT_TYPE, content_type);
    }
    let Ok(answer) = request.send().await else {
        return (axum::http::StatusCode::BAD_GATEWAY, "upstream Prometheus unreachable").into_response();
    };
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    let text = match (mode, serde_json::from_str::<serde_json::Value>(&text)) {
        (PrometheusMode::Warnings, Ok(mut object)) => {
            object["warnings"] = serde_json::json!(["PromQL info: partial response: one store was unreachable"]);
            object.to_string()
        }
        _ => text,
    };
    (status, json, text).into_response()
}
