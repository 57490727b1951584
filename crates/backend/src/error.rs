//! The one error type of every backend: typed cases callers branch on (context overflow,
//! unsupported operation, cancellation), the engine's and the catalogue's own errors kept as
//! sources, and transport failures that name the endpoint. Whether an error is fatal to a run
//! or worth another try is a method of the error ([`BackendError::is_fatal`],
//! [`BackendError::is_retryable`], [`BackendError::is_transient`]).

use std::path::PathBuf;

use longctx_engine::chat::ChatError;
use longctx_engine::policy::PolicyError;
use longctx_engine::{ModelError, SessionError};

use crate::catalog::CatalogError;

/// Errors from a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot do this at all (e.g. a server without `/tokenize`).
    #[error("{what} is not supported by this backend")]
    Unsupported { what: String },
    /// The prompt (plus the requested output) does not fit the model's context.
    #[error("context overflow{at}: {message}", at = endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default())]
    ContextOverflow {
        /// The server that refused, or `None` for the local engine.
        endpoint: Option<String>,
        message: String,
        /// Tokens the request needed, when known.
        needed: Option<usize>,
        /// The context limit, when known.
        limit: Option<usize>,
    },
    /// The request itself is invalid (empty prompt, `max_tokens` 0, bad sampling values).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The local engine failed while running a request.
    #[error("engine: {0}")]
    Engine(#[source] Box<SessionError>),
    /// A model file could not be loaded.
    #[error("loading {path}: {source}")]
    Load {
        path: PathBuf,
        #[source]
        source: Box<ModelError>,
    },
    /// The model's chat template failed to render.
    #[error(transparent)]
    Template(#[from] ChatError),
    /// A KV-cache policy name or option is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A catalogue model could not be found or fetched.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The caller stopped a streamed request (its callback returned `Flow::Stop`).
    #[error("the request was cancelled")]
    Cancelled,
    /// The server could not be reached (connection refused, DNS, TLS).
    #[error("{endpoint}: cannot connect: {detail}")]
    Connect { endpoint: String, detail: String },
    /// No response within the read timeout, or the connection broke mid-response.
    #[error("{endpoint}: {detail}")]
    Io { endpoint: String, detail: String },
    /// The server answered with an HTTP error status.
    #[error("{endpoint}: HTTP {status}: {body}")]
    Http {
        endpoint: String,
        status: u16,
        /// The response body, cut to a few hundred characters.
        body: String,
        /// Seconds from a `Retry-After` header.
        #[source]
        retry_after: Option<RetryAfter>,
    },
    /// The server answered 2xx with a body that is not the expected JSON.
    #[error("{endpoint}: malformed response: {detail}")]
    BadResponse { endpoint: String, detail: String },
    /// Every attempt failed with a retryable error.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        attempts: usize,
        #[source]
        last: Box<BackendError>,
    },
    /// A backend spec or configuration value is invalid.
    #[error("bad backend configuration: {0}")]
    Config(String),
}

/// The delay a server asked for in `Retry-After` (kept as a source so it never shows twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server asked to retry after {0} s")]
pub struct RetryAfter(pub u64);

impl BackendError {
    /// Whether the error is a context overflow (also under [`BackendError::RetriesExhausted`]).
    pub fn is_context_overflow(&self) -> bool {
        match self {
            BackendError::ContextOverflow { .. } => true,
            BackendError::RetriesExhausted { last, .. } => last.is_context_overflow(),
            _ => false,
        }
    }

    /// Errors that stop a whole run rather than one request: the server is unreachable, or
    /// the backend cannot do what was asked at all or is misconfigured.
    pub fn is_fatal(&self) -> bool {
        match self {
            BackendError::Connect { .. }
            | BackendError::Unsupported { .. }
            | BackendError::Config(_)
            | BackendError::Policy(_)
            | BackendError::Catalog(_)
            | BackendError::Load { .. } => true,
            BackendError::RetriesExhausted { last, .. } => last.is_fatal(),
            _ => false,
        }
    }

    /// Failures another attempt later may not repeat (a broken connection, a malformed
    /// answer, an overloaded or failing server): a resumed run tries such requests again.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Io { .. } | BackendError::BadResponse { .. } => true,
            BackendError::Http { status, .. } => *status >= 500 || *status == 429,
            BackendError::RetriesExhausted { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// Failures worth an immediate retry inside one request: connection failures, broken
    /// connections, 429 and 5xx. Context overflows, other 4xx, malformed bodies and timeouts
    /// are final (a timed-out generation would only time out again, at the server's expense).
    pub fn is_transient(&self) -> bool {
        match self {
            BackendError::Connect { .. } => true,
            BackendError::Io { detail, .. } => !detail.contains("timed out"),
            BackendError::Http { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> BackendError {
        BackendError::Unsupported { what: what.into() }
    }
}

/// Results of backend calls.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;
