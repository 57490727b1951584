//! [`BackendSpec`]: the CLI's `--backend` value, `local` (model and policy from other flags) or
//! `openai:URL[,URL...]` (OpenAI-compatible servers serving the same model).

use std::str::FromStr;

use crate::openai::{check_url, OpenAiConfig};
use crate::BackendError;

/// Which backend to run against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendSpec {
    /// The engine in this process.
    Local,
    /// OpenAI-compatible servers, by API base (e.g. `http://host:8000/v1`).
    OpenAi { endpoints: Vec<String> },
}

impl FromStr for BackendSpec {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "local" {
            return Ok(BackendSpec::Local);
        }
        let Some(urls) = s.strip_prefix("openai:") else {
            return Err(BackendError::Config(format!(
                "unknown backend '{s}' (expected `local` or `openai:URL[,URL...]`)"
            )));
        };
        let endpoints: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        if endpoints.is_empty() {
            return Err(BackendError::Config(
                "`openai:` needs at least one URL, e.g. openai:http://localhost:8000/v1".into(),
            ));
        }
        for u in &endpoints {
            check_url(u)?;
        }
        Ok(BackendSpec::OpenAi { endpoints })
    }
}

impl BackendSpec {
    /// The OpenAI client settings for this spec with `model` and the defaults of
    /// [`OpenAiConfig::new`]; `None` for `local`.
    pub fn openai_config(&self, model: &str) -> Option<OpenAiConfig> {
        match self {
            BackendSpec::Local => None,
            BackendSpec::OpenAi { endpoints } => Some(OpenAiConfig::new(endpoints.clone(), model)),
        }
    }
}

impl std::fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendSpec::Local => f.write_str("local"),
            BackendSpec::OpenAi { endpoints } => write!(f, "openai:{}", endpoints.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BackendSpec, String> {
        s.parse::<BackendSpec>().map_err(|e| e.to_string())
    }

    #[test]
    fn local_and_openai_specs_parse_and_round_trip() {
        assert_eq!(parse("local"), Ok(BackendSpec::Local));
        let s = parse("openai:http://a:8000/v1/, http://b:8001/v1").unwrap();
        assert_eq!(
            s,
            BackendSpec::OpenAi {
                endpoints: vec!["http://a:8000/v1".into(), "http://b:8001/v1".into()]
            }
        );
        assert_eq!(s.to_string(), "openai:http://a:8000/v1,http://b:8001/v1");
        assert_eq!(parse(&s.to_string()), Ok(s.clone()));
        let c = s.openai_config("qwen").unwrap();
        assert_eq!((c.endpoints.len(), c.model.as_str()), (2, "qwen"));
        assert!(BackendSpec::Local.openai_config("x").is_none());
        assert!(parse("openai:http://[::1]:8080/v1").is_ok());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(parse("vllm")
            .unwrap_err()
            .contains("unknown backend 'vllm'"));
        assert!(parse("openai:").unwrap_err().contains("at least one URL"));
        assert!(parse("openai:localhost:8000")
            .unwrap_err()
            .contains("http://"));
        assert!(parse("openai:http://h:80x/v1")
            .unwrap_err()
            .contains("bad port"));
        assert!(parse("openai:http:///v1").unwrap_err().contains("no host"));
        assert!(parse("openai:https://h/v1").is_ok());
    }
}
