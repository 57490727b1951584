//! HTTPS out of the box: the client talks to a local TLS server whose self-signed certificate
//! (tests/fixtures/tls-cert.pem, for localhost and 127.0.0.1) it trusts through `ca_file`, and
//! refuses it with a clear error when it does not.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use longctx_backend::{
    BackendError, ChatRequest, LlmBackend, OpenAiBackend, OpenAiConfig, Sampling,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const ANSWER: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"over tls"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;

/// Serves `connections` HTTPS connections on 127.0.0.1, answering every request with ANSWER.
fn tls_server(connections: usize) -> String {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("tls-cert.pem"))
            .expect("cert file")
            .collect::<Result<_, _>>()
            .expect("cert");
    let key = PrivateKeyDer::from_pem_file(fixture("tls-key.pem")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(stream) = stream else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut length = 0;
            let mut line = String::new();
            // A failed handshake (the untrusting client) ends here.
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ANSWER}",
                ANSWER.len()
            );
            let _ = tls.write_all(reply.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    format!("https://localhost:{}/v1", addr.port())
}

fn client(base: String, ca_file: Option<PathBuf>) -> Result<OpenAiBackend, BackendError> {
    let mut c = OpenAiConfig::new(vec![base], "m");
    c.ca_file = ca_file;
    c.retry.max_attempts = 1;
    OpenAiBackend::new(c)
}

#[test]
fn https_with_a_trusted_self_signed_certificate_works() {
    let base = tls_server(1);
    let remote = client(base, Some(fixture("tls-cert.pem"))).expect("client");
    let c = remote
        .chat(&ChatRequest::user("hi", Sampling::greedy(4)))
        .expect("answer over https");
    assert_eq!((c.text.as_str(), c.prompt_tokens), ("over tls", 3));
}

#[test]
fn an_untrusted_certificate_is_a_clear_error() {
    let base = tls_server(1);
    let remote = client(base.clone(), None).expect("client");
    let e = remote
        .chat(&ChatRequest::user("hi", Sampling::greedy(4)))
        .unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains(&base) && s.to_lowercase().contains("certificate"),
        "{s}"
    );
}

#[test]
fn a_bad_ca_file_is_named() {
    let not_pem = fixture("../tls.rs");
    let e = client("https://localhost:1/v1".into(), Some(not_pem)).unwrap_err();
    assert!(
        matches!(e, BackendError::Config(_)) && e.to_string().contains("tls.rs"),
        "{e}"
    );
    let missing = client(
        "https://localhost:1/v1".into(),
        Some("/nonexistent.pem".into()),
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent.pem"),
        "{missing}"
    );
}
