//! JSON value helpers shared by the dataset loaders and the scorers.

use serde_json::Value;

/// A JSON list of strings, or why the value is not one.
pub fn str_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "element {i}: expected a string, found {}",
                    kind(other)
                )),
            })
            .collect(),
        other => Err(format!("expected a list of strings, found {}", kind(other))),
    }
}

/// How an error message names a JSON value's type.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
