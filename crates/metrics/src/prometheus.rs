//! The Prometheus HTTP API, as fledge uses it: instant and range queries with credentials from files, a timeout per
//! query, and retries with back-off inside a deadline the caller owns.
//! (Over 500 lines with its unit tests against a local HTTP server; the code is about 400.)
//!
//! ```text
//!  query ──▶ attempt ──ok──▶ Answer (empty │ one value │ several series)
//!              │ unreachable, timeout, 5xx, Prometheus unavailable/timeout/internal
//!              ▼
//!           back-off 200 ms, 400 ms … 2 s, while the deadline allows ──▶ QueryError (never a value)
//!              │ bad_data, execution (the query itself is wrong): no retry
//! ```
//!
//! Secrets: the bearer token and the basic-auth password are read from their files for every query (so rotated
//! tokens are picked up), sent in headers marked sensitive, and never formatted into a message or a log.

use fledge_core::release::Prometheus;
use prometheus_http_query::{Client, Error as PrometheusHttpError};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// The first back-off after a failed attempt; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why a Prometheus client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read.
    #[error("failed to read the CA file {}", path.display())]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no valid PEM certificate.
    #[error("failed to parse the CA file {} as PEM certificates", path.display())]
    ParseCaFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A header name or value is invalid.
    #[error("failed to use header `{name}`: invalid name or value")]
    Header {
        /// The header's name.
        name: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("failed to build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// The URL is invalid.
    #[error("failed to use the Prometheus URL {url}")]
    Url {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: PrometheusHttpError,
    },
}

/// Why a query has no answer. Never a pass.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Prometheus could not be reached (connection refused, DNS, TLS).
    #[error("failed to reach Prometheus at {url}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The cause.
        #[source]
        source: PrometheusHttpError,
    },
    /// No answer within the timeout.
    #[error("Prometheus at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The base URL.
        url: String,
        /// The timeout of one query.
        timeout: Duration,
    },
    /// The answer could not be read as Prometheus' JSON (a proxy's page, a truncated body).
    #[error("failed to read the answer of Prometheus at {url}")]
    InvalidAnswer {
        /// The base URL.
        url: String,
        /// The cause.
        #[source]
        source: PrometheusHttpError,
    },
    /// An HTTP error without a Prometheus error body (a proxy, an authentication layer).
    #[error("Prometheus at {url} answered HTTP {status}")]
    Status {
        /// The base URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// Prometheus answered with an error of its own.
    #[error("Prometheus refused the query ({error_type}): {message}")]
    Refused {
        /// Prometheus' error type: `bad_data`, `execution`, `timeout`, `unavailable` ...
        error_type: String,
        /// Prometheus' own message.
        message: String,
    },
    /// The answer is not what fledge expects (a range vector for an instant query, a string).
    #[error("Prometheus returned a {kind}, not an instant vector or a scalar")]
    UnexpectedResult {
        /// What came back.
        kind: &'static str,
    },
    /// The query returned several series where a check needs one value.
    #[error("the query returned {} series where a check needs one: {}; aggregate them (sum, max, ...) or narrow the selector", series.len(), series_list(series))]
    SeveralSeries {
        /// Each series' labels.
        series: Vec<String>,
    },
    /// A credential file could not be read.
    #[error("failed to read the credentials file {}", path.display())]
    ReadCredentials {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The deadline passed before any attempt could be made.
    #[error("no time was left to query Prometheus")]
    OutOfTime,
}

impl QueryError {
    /// Whether another attempt could succeed: the query itself is not at fault.
    pub fn is_transient(&self) -> bool {
        match self {
            QueryError::Unreachable { .. } | QueryError::Timeout { .. } => true,
            QueryError::Status { status, .. } => *status >= 500 || *status == 429,
            QueryError::Refused { error_type, .. } => {
                matches!(error_type.as_str(), "timeout" | "canceled" | "unavailable" | "internal")
            }
            QueryError::UnexpectedResult { .. }
            | QueryError::InvalidAnswer { .. }
            | QueryError::SeveralSeries { .. }
            | QueryError::ReadCredentials { .. }
            | QueryError::OutOfTime => false,
        }
    }

    /// Whether Prometheus rejected the query text itself (a typo, a wrong function): preflight shows these.
    pub fn is_rejected_query(&self) -> bool {
        matches!(self, QueryError::Refused { error_type, .. } if is_rejection(error_type))
    }

    /// Prometheus' own message when it rejected the query itself ([`QueryError::is_rejected_query`]), else the
    /// error back.
    pub fn into_rejection(self) -> Result<String, QueryError> {
        match self {
            QueryError::Refused { message, error_type } if is_rejection(&error_type) => Ok(message),
            other => Err(other),
        }
    }
}

/// Prometheus' error types for a query it cannot run (a parse error, a type error), as opposed to its own trouble.
fn is_rejection(error_type: &str) -> bool {
    error_type == "bad_data" || error_type == "execution"
}

/// What an instant query returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// No series.
    Empty,
    /// One series or a scalar (possibly NaN).
    One(f64),
    /// Several series, each described by its labels: `{destination_workload="reviews-v2", ...}`.
    Several(Vec<String>),
}

/// A query's answer and how many attempts it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered<T> {
    /// The answer.
    pub answer: T,
    /// Attempts made (1 when the first one answered).
    pub attempts: u32,
}

/// A client for one Prometheus.
#[derive(Clone)]
pub struct PrometheusClient {
    client: Client,
    url: String,
    timeout: Duration,
    bearer_token_file: Option<PathBuf>,
    basic_auth: Option<(String, PathBuf)>,
}

impl std::fmt::Debug for PrometheusClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only where, never how it authenticates.
        formatter.debug_struct("PrometheusClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl PrometheusClient {
    /// A client for the manifest's `prometheus:` settings.
    pub fn new(settings: &Prometheus) -> Result<PrometheusClient, ClientError> {
        let timeout = settings.timeout.as_std();
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let header = || ClientError::Header { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header())?;
            let value = HeaderValue::from_str(value).map_err(|_| header())?;
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .default_headers(headers)
            .user_agent(concat!("fledge/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::ReadCaFile { path: path.clone(), source })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|source| ClientError::ParseCaFile { path: path.clone(), source })?;
            builder = builder.tls_certs_merge(certificates);
        }
        if settings.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(ClientError::Build)?;
        let url = settings.url.trim_end_matches('/').to_owned();
        let client = Client::from(http, &url).map_err(|source| ClientError::Url { url: url.clone(), source })?;
        Ok(PrometheusClient {
            client,
            url,
            timeout,
            bearer_token_file: settings.bearer_token_file.clone(),
            basic_auth: settings.basic_auth.as_ref().map(|auth| (auth.username.clone(), auth.password_file.clone())),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `Authorization` header for this query, read from the credential files now.
    fn authorization(&self) -> Result<Option<HeaderValue>, QueryError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|source| QueryError::ReadCredentials { path: path.to_owned(), source })
        };
        let value = match (&self.bearer_token_file, &self.basic_auth) {
            (Some(path), _) => format!("Bearer {}", read(path)?.trim()),
            (None, Some((username, path))) => {
                use base64::Engine as _;
                let password = read(path)?;
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")))
            }
            (None, None) => return Ok(None),
        };
        let file = self.bearer_token_file.as_ref().or(self.basic_auth.as_ref().map(|(_, path)| path));
        let mut header = HeaderValue::from_str(&value).map_err(|_| QueryError::ReadCredentials {
            path: file.cloned().unwrap_or_default(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the credentials are not a valid header value",
            ),
        })?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    fn classify(&self, error: PrometheusHttpError) -> QueryError {
        let url = self.url.clone();
        match error {
            PrometheusHttpError::Prometheus(error) => {
                QueryError::Refused { error_type: error.error_type().to_string(), message: error.message().to_owned() }
            }
            PrometheusHttpError::Client(client) => {
                let inner = client.inner();
                if inner.is_some_and(reqwest::Error::is_timeout) {
                    QueryError::Timeout { url, timeout: self.timeout }
                } else if let Some(status) = inner.and_then(reqwest::Error::status) {
                    QueryError::Status { url, status: status.as_u16() }
                } else if inner.is_none_or(|inner| inner.is_decode() || inner.is_body()) {
                    QueryError::InvalidAnswer { url, source: PrometheusHttpError::Client(client) }
                } else {
                    QueryError::Unreachable { url, source: PrometheusHttpError::Client(client) }
                }
            }
            other => QueryError::Unreachable { url, source: other },
        }
    }

    /// One instant query, evaluated now, retried while transient errors leave time before `deadline`.
    pub async fn instant(&self, query: &str, deadline: Instant) -> Result<Answered<Answer>, QueryError> {
        self.with_retries(deadline, || async {
            let mut request = self.client.query(query).timeout(self.timeout.as_millis() as i64);
            if let Some(header) = self.authorization()? {
                request = request.header(AUTHORIZATION, header);
            }
            let response = request.get().await.map_err(|error| self.classify(error))?;
            let data = response.data();
            if let Some(vector) = data.as_vector() {
                return Ok(match vector.as_slice() {
                    [] => Answer::Empty,
                    [one] => Answer::One(one.sample().value()),
                    several => Answer::Several(several.iter().map(|series| labels(series.metric())).collect()),
                });
            }
            if let Some(scalar) = data.as_scalar() {
                return Ok(Answer::One(scalar.value()));
            }
            Err(QueryError::UnexpectedResult {
                kind: if data.as_matrix().is_some() { "range vector" } else { "string" },
            })
        })
        .await
    }

    /// One instant query evaluated `at` a second: every series, as the value of its label `label` (empty when the
    /// series lacks it) and its value. One query is one consistent read: Prometheus never shows part of a scrape.
    pub async fn instant_by_label(
        &self,
        query: &str,
        label: &str,
        at: jiff::Timestamp,
        deadline: Instant,
    ) -> Result<Answered<Vec<(String, f64)>>, QueryError> {
        self.with_retries(deadline, || async {
            let mut request = self.client.query(query).timeout(self.timeout.as_millis() as i64).at(at.as_second());
            if let Some(header) = self.authorization()? {
                request = request.header(AUTHORIZATION, header);
            }
            let response = request.get().await.map_err(|error| self.classify(error))?;
            let data = response.data();
            match data.as_vector() {
                Some(vector) => Ok(vector
                    .iter()
                    .map(|series| (series.metric().get(label).cloned().unwrap_or_default(), series.sample().value()))
                    .collect()),
                None => Err(QueryError::UnexpectedResult {
                    kind: if data.as_matrix().is_some() { "range vector" } else { "scalar or string" },
                }),
            }
        })
        .await
    }

    /// One range query from `start` to `end` every `step`; each series with its finite samples.
    pub async fn range(
        &self,
        query: &str,
        start: jiff::Timestamp,
        end: jiff::Timestamp,
        step: Duration,
        deadline: Instant,
    ) -> Result<Answered<Vec<(String, Vec<f64>)>>, QueryError> {
        self.with_retries(deadline, || async {
            let mut request = self
                .client
                .query_range(query, start.as_second(), end.as_second(), step.as_secs_f64().max(1.0))
                .timeout(self.timeout.as_millis() as i64);
            if let Some(header) = self.authorization()? {
                request = request.header(AUTHORIZATION, header);
            }
            let response = request.get().await.map_err(|error| self.classify(error))?;
            let Some(matrix) = response.data().as_matrix() else {
                return Err(QueryError::UnexpectedResult { kind: "instant vector" });
            };
            Ok(matrix
                .iter()
                .map(|series| {
                    let values = series.samples().iter().map(|sample| sample.value()).filter(|v| v.is_finite());
                    (labels(series.metric()), values.collect())
                })
                .collect())
        })
        .await
    }

    async fn with_retries<T, F, Fut>(&self, deadline: Instant, attempt: F) -> Result<Answered<T>, QueryError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, QueryError>>,
    {
        let mut attempts = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            if Instant::now() >= deadline {
                return Err(QueryError::OutOfTime);
            }
            attempts += 1;
            let result = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(result) => result,
                Err(_elapsed) => Err(QueryError::Timeout { url: self.url.clone(), timeout: self.timeout }),
            };
            match result {
                Ok(answer) => return Ok(Answered { answer, attempts }),
                Err(error) if error.is_transient() && Instant::now() + backoff < deadline => {
                    tracing::debug!(error = %error, attempts, "Prometheus query failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// The first few series, for a message.
fn series_list(series: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = series.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if series.len() > SHOWN {
        text.push_str(&format!(" and {} more", series.len() - SHOWN));
    }
    text
}

/// A series' labels as PromQL writes them, sorted: `{code="500", version="v2"}`.
fn labels(metric: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<(&String, &String)> = metric.iter().collect();
    pairs.sort();
    let inner: Vec<String> =
        pairs.iter().map(|(name, value)| format!("{name}=\"{}\"", crate::queries::escape(value))).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fledge_core::release::BasicAuth;

    fn settings(url: &str) -> Prometheus {
        Prometheus {
            url: url.to_owned(),
            timeout: fledge_core::Duration::from_secs(2),
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            insecure_skip_verify: false,
            headers: Default::default(),
        }
    }

    #[test]
    fn credentials_are_read_from_files_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t-token\n").unwrap();
        let client =
            PrometheusClient::new(&Prometheus { bearer_token_file: Some(token.clone()), ..settings("http://p:9090") })
                .unwrap();
        let header = client.authorization().unwrap().unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer s3cr3t-token");
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cr3t"), "the header's Debug hides it");
        assert!(!format!("{client:?}").contains("token"), "the client's Debug names no credentials");

        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let basic = Prometheus {
            basic_auth: Some(BasicAuth { username: "fledge".into(), password_file: password }),
            ..settings("http://p:9090")
        };
        let header = PrometheusClient::new(&basic).unwrap().authorization().unwrap().unwrap();
        assert_eq!(header.to_str().unwrap(), "Basic ZmxlZGdlOmh1bnRlcjI=", "base64 of fledge:hunter2");

        std::fs::remove_file(&token).unwrap();
        let error = client.authorization().unwrap_err();
        assert!(error.to_string().contains("failed to read the credentials file"), "{error}");
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Prometheus { ca_file: Some(dir.path().join("missing.pem")), ..settings("https://p:9090") };
        let error = PrometheusClient::new(&missing).unwrap_err();
        assert!(matches!(error, ClientError::ReadCaFile { .. }), "{error:?}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        let error =
            PrometheusClient::new(&Prometheus { ca_file: Some(garbage), ..settings("https://p:9090") }).unwrap_err();
        assert!(matches!(error, ClientError::ParseCaFile { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retried_until_the_deadline_then_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = PrometheusClient::new(&settings(&format!("http://127.0.0.1:{port}"))).unwrap();
        let deadline = Instant::now() + Duration::from_millis(900);
        let error = client.instant("vector(1)", deadline).await.unwrap_err();
        assert!(matches!(error, QueryError::Unreachable { .. }), "{error:?}");
        assert!(error.is_transient());
    }

    /// A server that answers each connection with the next canned response and records the requests.
    async fn canned_server(responses: Vec<String>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buffer = vec![0; 16 * 1024];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                seen.lock().unwrap().push(String::from_utf8_lossy(&buffer[..read]).to_lowercase());
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (url, requests)
    }

    fn http(status: &str, content_type: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn credentials_and_headers_are_sent_and_bad_answers_are_errors_not_values() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-123\n").unwrap();
        let vector =
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"99.5"]}]}}"#;
        let (url, requests) = canned_server(vec![
            http("502 Bad Gateway", "text/html", "<html>bad gateway</html>"),
            http("200 OK", "application/json", vector),
            http("200 OK", "application/json", "{not json"),
            http(
                "400 Bad Request",
                "application/json",
                r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#,
            ),
        ])
        .await;
        let settings = Prometheus {
            bearer_token_file: Some(token),
            headers: [("X-Scope-OrgID".to_owned(), "team-a".to_owned())].into(),
            ..settings(&url)
        };
        let client = PrometheusClient::new(&settings).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);

        let answered = client.instant("vector(99.5)", deadline).await.unwrap();
        assert_eq!(answered, Answered { answer: Answer::One(99.5), attempts: 2 }, "a proxy's 502 is retried");
        let seen = requests.lock().unwrap().clone();
        assert!(seen[1].contains("authorization: bearer tok-123"), "{}", seen[1]);
        assert!(seen[1].contains("x-scope-orgid: team-a"), "{}", seen[1]);

        let garbage = client.instant("vector(1)", deadline).await.unwrap_err();
        assert!(matches!(garbage, QueryError::InvalidAnswer { .. }), "an unparsable answer is an error: {garbage:?}");
        let rejected = client.instant("sum(", deadline).await.unwrap_err();
        assert!(rejected.is_rejected_query(), "{rejected:?}");
        assert_eq!(
            rejected.to_string(),
            "Prometheus refused the query (bad_data): 1:5: parse error: unexpected end of input"
        );
    }

    #[test]
    fn only_failures_of_the_query_itself_are_rejections() {
        let refused = |error_type: &str| QueryError::Refused { error_type: error_type.into(), message: "m".into() };
        assert!(refused("bad_data").is_rejected_query() && !refused("bad_data").is_transient());
        assert!(refused("unavailable").is_transient() && !refused("unavailable").is_rejected_query());
        assert!(QueryError::Status { url: String::new(), status: 502 }.is_transient());
        assert!(!QueryError::Status { url: String::new(), status: 401 }.is_transient());
    }
}
