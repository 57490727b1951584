//! [`OpenAiBackend`]: a blocking client for OpenAI-compatible servers (vLLM, llama.cpp's
//! `llama-server`, OpenAI): `POST {base}/chat/completions` and `{base}/completions`, whole or
//! streamed over SSE, token counting through the servers' `/tokenize`, retries with
//! exponential backoff, a concurrency limit and several endpoints with requests spread across
//! them. Bodies are the typed structs of [`crate::wire`].

mod convert;
pub mod endpoints;
pub mod overflow;
pub mod retry;
mod sse;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use endpoints::{check_url, Endpoint, EndpointPool, Semaphore};
pub use overflow::is_context_overflow;
pub use retry::RetryPolicy;

use crate::wire::{
    ChatCompletionResponse, CompletionResponse, DetokenizeRequest, DetokenizeResponse, ModelEntry,
    ModelList, TokenizeRequest, TokenizeResponse,
};
use crate::{
    BackendError, BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest,
    LlmBackend, OnEvent, Result,
};

/// The environment variable naming a PEM file of extra CAs ([`OpenAiConfig::ca_file`]).
pub const CA_FILE_ENV: &str = "LONGCTX_CA_FILE";

/// TLS settings trusting the built-in web roots plus the certificates in `ca_file`.
fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let bad = |detail: String| BackendError::Config(format!("{}: {detail}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(format!("cannot read certificates: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Settings of an [`OpenAiBackend`].
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiConfig {
    /// API bases, e.g. `http://host:8000/v1`; requests are spread over them.
    pub endpoints: Vec<String>,
    /// The `model` field of every request (vLLM: the served model name; llama.cpp ignores it).
    pub model: String,
    /// Environment variable holding the API key, sent as `Authorization: Bearer …` when set.
    /// The key is read once at construction and never logged or shown in `Debug`.
    pub api_key_env: String,
    pub connect_timeout: Duration,
    /// Longest wait for any read from the server (a whole non-streaming generation).
    pub read_timeout: Duration,
    pub retry: RetryPolicy,
    /// Most requests in flight across all threads and endpoints.
    pub max_concurrency: usize,
    /// How long an endpoint that failed is avoided while others are available.
    pub endpoint_cooldown: Duration,
    /// The served model's context window in tokens, for [`BackendInfo`] (0 = unknown).
    pub context_window: usize,
    /// Most output tokens per request, for [`BackendInfo`] (0 = unknown).
    pub max_output_tokens: usize,
    /// Whether the server continues a final assistant message ([`ChatRequest::prefill`]).
    /// vLLM does with `continue_final_message` (sent), recent llama.cpp servers always do.
    pub assistant_prefill: bool,
    /// A PEM file of extra certificate authorities to trust for `https://` endpoints (e.g. a
    /// self-signed server), besides the built-in web roots. Defaults to `$LONGCTX_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// When the server has no `/tokenize`, count tokens as ⌈UTF-8 bytes / 4⌉ (OpenAI's rule of
    /// thumb for English) instead of failing with [`BackendError::Unsupported`]. Off by default:
    /// the estimate can be far off for code and non-English text.
    pub estimate_tokens: bool,
}

impl OpenAiConfig {
    /// Defaults: key from `OPENAI_API_KEY`, 10 s connect and 600 s read timeouts,
    /// [`RetryPolicy::default`], 4 concurrent requests, 30 s endpoint cool-down, prefill on,
    /// extra CAs from `$LONGCTX_CA_FILE`, no token estimate.
    pub fn new(endpoints: Vec<String>, model: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            endpoints,
            model: model.into(),
            api_key_env: "OPENAI_API_KEY".into(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            max_concurrency: 4,
            endpoint_cooldown: Duration::from_secs(30),
            context_window: 0,
            max_output_tokens: 0,
            assistant_prefill: true,
            ca_file: std::env::var_os(CA_FILE_ENV).map(PathBuf::from),
            estimate_tokens: false,
        }
    }
}

/// Where a request goes: under the API base (`/v1`) or the server root (`/tokenize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Api,
    Root,
}

/// An OpenAI-compatible server (or several serving the same model).
pub struct OpenAiBackend {
    config: OpenAiConfig,
    api_key: Option<String>,
    agent: ureq::Agent,
    pool: EndpointPool,
    limit: Semaphore,
    info: BackendInfo,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("config", &self.config)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The first `n` characters of `s`, marked when cut.
pub(crate) fn snippet(s: &str, n: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl OpenAiBackend {
    /// Checks the configuration and reads the API key; contacts no server.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiBackend> {
        if config.endpoints.is_empty() {
            return Err(BackendError::Config("no endpoints".into()));
        }
        for e in &config.endpoints {
            check_url(e)?;
        }
        if config.max_concurrency == 0 {
            return Err(BackendError::Config(
                "max_concurrency must be at least 1".into(),
            ));
        }
        config.retry.validate()?;
        let api_key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty());
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.read_timeout)
            .timeout_write(config.read_timeout);
        if let Some(ca) = &config.ca_file {
            agent = agent.tls_config(tls_config(ca)?);
        }
        let agent = agent.build();
        let info = BackendInfo {
            model_id: config.model.clone(),
            context_window: config.context_window,
            max_output_tokens: config.max_output_tokens,
            caps: Capabilities {
                raw_completion: true,
                chat: true,
                assistant_prefill: config.assistant_prefill,
                logprobs: false,
                tokenize: true,
            },
        };
        Ok(OpenAiBackend {
            pool: EndpointPool::new(&config.endpoints, config.endpoint_cooldown),
            limit: Semaphore::new(config.max_concurrency),
            api_key,
            agent,
            info,
            config,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        self.pool.endpoints()
    }

    /// One POST (or a GET without `body`), no retries; a 2xx answer is returned unread.
    /// Errors name the URL.
    fn send_once(&self, url: &str, body: Option<&str>, accept: &str) -> Result<ureq::Response> {
        let mut req = match body {
            Some(_) => self.agent.post(url).set("Content-Type", "application/json"),
            None => self.agent.get(url),
        }
        .set("Accept", accept);
        if let Some(key) = &self.api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let sent = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        match sent {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => {
                let retry_after = resp
                    .header("Retry-After")
                    .and_then(retry::parse_retry_after)
                    .map(crate::RetryAfter);
                let text = resp.into_string().unwrap_or_default();
                if overflow::is_context_overflow(status, &text) {
                    return Err(overflow::overflow_error(url, &text));
                }
                Err(BackendError::Http {
                    endpoint: url.to_string(),
                    status,
                    body: snippet(&text, 300),
                    retry_after,
                })
            }
            Err(ureq::Error::Transport(t)) => {
                use ureq::ErrorKind as K;
                // Transport's Display repeats the URL; the error names it once.
                let mut detail = t.kind().to_string();
                let parts = [
                    t.message().map(str::to_string),
                    std::error::Error::source(&t).map(|s| s.to_string()),
                ];
                for p in parts.into_iter().flatten() {
                    if p.starts_with(&detail) {
                        detail = p;
                    } else if !detail.contains(&p) {
                        detail = format!("{detail}: {p}");
                    }
                }
                let endpoint = url.to_string();
                Err(match t.kind() {
                    K::ConnectionFailed | K::Dns | K::ProxyConnect => {
                        BackendError::Connect { endpoint, detail }
                    }
                    K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly => {
                        BackendError::Config(format!("{endpoint}: {detail}"))
                    }
                    _ => BackendError::Io { endpoint, detail },
                })
            }
        }
    }

    /// One POST (GET without `body`) whose whole answer is read as JSON of type `T`.
    fn post_once<T: DeserializeOwned>(&self, url: &str, body: Option<&str>) -> Result<T> {
        let resp = self.send_once(url, body, "application/json")?;
        let text = resp.into_string().map_err(|e| BackendError::Io {
            endpoint: url.to_string(),
            detail: format!("reading the response: {e}"),
        })?;
        let bad = |detail: String| BackendError::BadResponse {
            endpoint: url.to_string(),
            detail,
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not JSON ({e}): {}", snippet(&text, 200))))?;
        serde_json::from_value(v)
            .map_err(|e| bad(format!("unexpected answer ({e}): {}", snippet(&text, 200))))
    }

    /// POSTs JSON to `path` and reads the answer as `T` ([`OpenAiBackend::with_retries`]).
    fn post<T: DeserializeOwned>(
        &self,
        place: Place,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(T, String)> {
        let body = serde_json::to_string(body)
            .map_err(|e| BackendError::InvalidRequest(format!("request body: {e}")))?;
        let _permit = self.limit.acquire();
        self.with_retries(place, path, |url| self.post_once(url, Some(&body)))
    }

    /// Runs `attempt` on some endpoint's URL for `path`, retrying transient failures: on
    /// another endpoint at once while one is left untried for this request, else after the
    /// backoff delay. Callers hold the concurrency permit through backoff waits, so an
    /// overloaded server sees fewer requests while it recovers.
    /// Returns the result and the URL that gave it.
    fn with_retries<T>(
        &self,
        place: Place,
        path: &str,
        mut attempt_at: impl FnMut(&str) -> Result<T>,
    ) -> Result<(T, String)> {
        let attempts = self.config.retry.max_attempts.max(1);
        let mut tried: Vec<usize> = Vec::new();
        let mut waits = 0;
        let mut last = None;
        for attempt in 0..attempts {
            let lease = self
                .pool
                .pick(&tried)
                .ok_or_else(|| BackendError::Config("no endpoints".into()))?;
            let root = match place {
                Place::Api => &lease.endpoint.base,
                Place::Root => &lease.endpoint.root,
            };
            let url = format!("{root}{path}");
            let index = lease.index;
            let result = attempt_at(&url);
            drop(lease);
            match result {
                Ok(v) => {
                    self.pool.mark_up(index);
                    return Ok((v, url));
                }
                Err(e) if !retry::is_retryable(&e) => return Err(e),
                Err(e) => {
                    if retry::is_endpoint_down(&e) {
                        self.pool.mark_down(index);
                    }
                    if !tried.contains(&index) {
                        tried.push(index);
                    }
                    let untried_left = tried.len() < self.pool.len();
                    if attempt + 1 < attempts && !untried_left {
                        std::thread::sleep(self.config.retry.delay_after(waits, &e));
                        waits += 1;
                    }
                    last = Some(e);
                }
            }
        }
        let last = last.unwrap_or_else(|| BackendError::Config("no attempt was made".into()));
        if attempts == 1 {
            return Err(last);
        }
        Err(BackendError::RetriesExhausted {
            attempts,
            last: Box::new(last),
        })
    }

    /// The models the server serves (`GET {base}/models`), e.g. to name a run after the
    /// served model.
    pub fn served_models(&self) -> Result<Vec<ModelEntry>> {
        let _permit = self.limit.acquire();
        let (list, _) = self.with_retries(Place::Api, "/models", |url| {
            self.post_once::<ModelList>(url, None)
        })?;
        Ok(list.data)
    }

    /// `/tokenize` on the server root; `Ok(None)` when the server has none (404/405).
    fn server_tokenize(&self, text: &str) -> Result<Option<Vec<u32>>> {
        let body = TokenizeRequest {
            model: self.config.model.clone(),
            prompt: Some(text.into()),
            content: Some(text.into()),
            add_special: Some(false),
            add_special_tokens: Some(false),
        };
        match self.post::<TokenizeResponse>(Place::Root, "/tokenize", &body) {
            Ok((v, _)) => Ok(Some(v.tokens.iter().map(|t| t.id()).collect())),
            Err(BackendError::Http {
                status: 404 | 405, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl OpenAiBackend {
    fn check_chat(&self, req: &ChatRequest) -> Result<()> {
        convert::check_sampling(&req.sampling)?;
        if req.messages.is_empty() {
            return Err(BackendError::InvalidRequest("no messages".into()));
        }
        if req.prefill.is_some() && !self.config.assistant_prefill {
            return Err(BackendError::unsupported("assistant prefill"));
        }
        Ok(())
    }

    /// A streamed request: connecting is retried as [`OpenAiBackend::post`] is; once the
    /// server has answered 2xx its SSE stream is read to the end (or until the consumer
    /// stops it, which closes the connection so the server stops generating).
    fn stream(
        &self,
        place: Place,
        path: &str,
        body: &impl Serialize,
        kind: sse::Kind,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Completion> {
        let started = Instant::now();
        let body = serde_json::to_string(body)
            .map_err(|e| BackendError::InvalidRequest(format!("request body: {e}")))?;
        let _permit = self.limit.acquire();
        let (resp, url) = self.with_retries(place, path, |url| {
            self.send_once(url, Some(&body), "text/event-stream")
        })?;
        sse::read_stream(resp.into_reader(), &url, kind, started, on_event)
    }
}

/// ⌈UTF-8 bytes / 4⌉: the documented fallback estimate of [`OpenAiConfig::estimate_tokens`].
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

impl LlmBackend for OpenAiBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn complete(&self, req: &CompletionRequest) -> Result<Completion> {
        let started = Instant::now();
        convert::check_sampling(&req.sampling)?;
        let body = convert::completion_body(&self.config.model, req, false);
        let (v, url) = self.post::<CompletionResponse>(Place::Api, "/completions", &body)?;
        convert::text_completion(v, started.elapsed()).map_err(|detail| BackendError::BadResponse {
            endpoint: url,
            detail,
        })
    }

    fn chat(&self, req: &ChatRequest) -> Result<Completion> {
        let started = Instant::now();
        self.check_chat(req)?;
        let body = convert::chat_body(&self.config.model, req, false);
        let (v, url) =
            self.post::<ChatCompletionResponse>(Place::Api, "/chat/completions", &body)?;
        convert::chat_completion(v, started.elapsed()).map_err(|detail| BackendError::BadResponse {
            endpoint: url,
            detail,
        })
    }

    fn complete_stream(
        &self,
        req: &CompletionRequest,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Completion> {
        convert::check_sampling(&req.sampling)?;
        let body = convert::completion_body(&self.config.model, req, true);
        self.stream(Place::Api, "/completions", &body, sse::Kind::Text, on_event)
    }

    fn chat_stream(&self, req: &ChatRequest, on_event: &mut OnEvent<'_>) -> Result<Completion> {
        self.check_chat(req)?;
        let body = convert::chat_body(&self.config.model, req, true);
        self.stream(
            Place::Api,
            "/chat/completions",
            &body,
            sse::Kind::Chat,
            on_event,
        )
    }

    fn parallelism(&self) -> usize {
        self.config.max_concurrency
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        match self.server_tokenize(text)? {
            Some(t) => Ok(t.len()),
            None if self.config.estimate_tokens => Ok(estimate_tokens(text)),
            None => Err(BackendError::unsupported(
                "token counting (the server has no /tokenize; set estimate_tokens for an estimate)",
            )),
        }
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.server_tokenize(text)?
            .ok_or_else(|| BackendError::unsupported("tokenize (the server has no /tokenize)"))
    }

    fn detokenize(&self, tokens: &[u32]) -> Result<String> {
        let body = DetokenizeRequest {
            model: self.config.model.clone(),
            tokens: tokens.to_vec(),
        };
        match self.post::<DetokenizeResponse>(Place::Root, "/detokenize", &body) {
            Ok((v, url)) => v
                .text()
                .map(str::to_string)
                .ok_or(BackendError::BadResponse {
                    endpoint: url,
                    detail: "no \"content\" or \"prompt\" text in the answer".into(),
                }),
            Err(BackendError::Http {
                status: 404 | 405, ..
            }) => Err(BackendError::unsupported(
                "detokenize (the server has no /detokenize)",
            )),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_and_snippet() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(snippet("  ab  ", 5), "ab");
        assert_eq!(snippet("héllo world", 3), "hél…");
    }

    #[test]
    fn config_is_checked_and_the_key_never_shows() {
        let bad = |f: fn(&mut OpenAiConfig)| {
            let mut c = OpenAiConfig::new(vec!["http://127.0.0.1:1/v1".into()], "m");
            f(&mut c);
            OpenAiBackend::new(c)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(bad(|c| c.endpoints.clear()).contains("no endpoints"));
        assert!(bad(|c| c.max_concurrency = 0).contains("max_concurrency"));
        assert!(bad(|c| c.endpoints = vec!["ftp://x".into()]).contains("ftp://x"));
        let var = "LONGCTX_BACKEND_TEST_KEY_DEBUG";
        std::env::set_var(var, "sk-secret-123");
        let mut c = OpenAiConfig::new(vec!["http://127.0.0.1:1/v1".into()], "m");
        c.api_key_env = var.into();
        let b = OpenAiBackend::new(c).unwrap();
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("sk-secret") && shown.contains("<set>"),
            "{shown}"
        );
    }
}
