//! Method options: `key=value,...` checked against the method's declared options, each with
//! its default, read back as numbers or text.

use std::collections::BTreeMap;

use crate::{MethodInfo, PipelineError, Result};

/// One option a method declares.
#[derive(Clone, Copy, Debug)]
pub struct MethodOption {
    pub name: &'static str,
    /// The default as text (`auto` = derived from the backend's window where the method says).
    pub default: &'static str,
    pub help: &'static str,
}

/// A method's options after parsing: every declared option with its value.
#[derive(Clone, Debug, Default)]
pub struct Options {
    method: &'static str,
    values: BTreeMap<&'static str, String>,
}

impl Options {
    /// Parses `key=value,...` for `info`; unknown keys and malformed pairs are errors.
    pub fn parse(info: &MethodInfo, text: &str) -> Result<Options> {
        let mut values: BTreeMap<&'static str, String> = info
            .options
            .iter()
            .map(|o| (o.name, o.default.to_string()))
            .collect();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(PipelineError::BadOption {
                    method: info.name,
                    option: pair.to_string(),
                    value: String::new(),
                    why: "expected key=value".into(),
                });
            };
            let Some(o) = info.options.iter().find(|o| o.name == k.trim()) else {
                return Err(PipelineError::UnknownOption {
                    method: info.name,
                    option: k.trim().to_string(),
                    known: info
                        .options
                        .iter()
                        .map(|o| o.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            values.insert(o.name, v.trim().to_string());
        }
        let options = Options {
            method: info.name,
            values,
        };
        // Numeric options are checked now, not halfway through a run.
        for o in info.options {
            if o.default.parse::<f64>().is_ok() {
                options.number(o.name)?;
            }
        }
        Ok(options)
    }

    /// The text value of `name` (`None` if the method declares no such option).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn number(&self, name: &str) -> Result<Option<f64>> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        if v == "auto" {
            return Ok(None);
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
            _ => Err(PipelineError::BadOption {
                method: self.method,
                option: name.to_string(),
                value: v.to_string(),
                why: "expected a number ≥ 0".into(),
            }),
        }
    }

    /// A whole-number option; `None` when it is `auto` or undeclared.
    pub fn usize(&self, name: &str) -> Option<usize> {
        self.number(name).ok().flatten().map(|x| x as usize)
    }

    /// A whole-number option that must be at least 1; `None` when it is `auto`.
    pub fn positive(&self, name: &str) -> Result<Option<usize>> {
        match self.number(name)? {
            Some(x) if x < 1.0 => Err(PipelineError::BadOption {
                method: self.method,
                option: name.to_string(),
                value: x.to_string(),
                why: "must be at least 1".into(),
            }),
            other => Ok(other.map(|x| x as usize)),
        }
    }

    /// The parsed options as `key=value,...` (every option, defaults included).
    pub fn describe(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}
