//! A parser for the Python literals some datasets store as strings (`"{'19': 'birthday'}"`,
//! `"['int main() {', ...]"`): strings in either quote style with backslash escapes,
//! integers, floats, `True`/`False`/`None`, lists, tuples and dicts, converted to JSON values
//! (tuples become lists, dict keys must be strings or integers and become strings).

use serde_json::{Map, Number, Value};

/// Parses one Python literal; the error says what was expected at which byte offset.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        src: text,
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.peek() {
            None => Err("unexpected end of input".into()),
            Some(b'\'') | Some(b'"') => self.string().map(Value::String),
            Some(b'[') => self.seq(b']').map(Value::Array),
            Some(b'(') => self.seq(b')').map(Value::Array),
            Some(b'{') => self.dict(),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.number(),
            Some(_) => {
                for (word, v) in [
                    ("True", Value::Bool(true)),
                    ("False", Value::Bool(false)),
                    ("None", Value::Null),
                ] {
                    if self.src[self.i..].starts_with(word) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                Err(format!("unexpected character at byte {}", self.i))
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(out);
            }
            out.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at byte {}",
                        close as char, self.i
                    ))
                }
            }
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut out = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Value::Object(out));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("unsupported dict key before byte {}", self.i)),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(format!("expected ':' at byte {}", self.i));
            }
            self.i += 1;
            let v = self.value()?;
            out.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            let exponent_sign =
                matches!(c, b'-' | b'+') && matches!(self.s[self.i - 1], b'e' | b'E');
            if c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'_') || exponent_sign {
                self.i += 1;
            } else {
                break;
            }
        }
        let text: String = self.src[start..self.i]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("bad number '{text}' at byte {start}"))
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i] as char;
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        let rest = &self.src[self.i..];
        let mut chars = rest.char_indices();
        while let Some((off, c)) = chars.next() {
            if c == quote {
                self.i += off + 1;
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' | '\'' | '"' => out.push(e),
                '\n' => {}
                'x' | 'u' | 'U' => {
                    let len = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = (0..len)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    let ch = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad \\{e} escape in string at byte {start}"))?;
                    out.push(ch);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Err(format!("unterminated string starting at byte {start}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_python_literals() {
        assert_eq!(
            parse("{'19': 'husband (yourself) birthday', \"9\": \"my wife's birthday\"}").unwrap(),
            json!({"19": "husband (yourself) birthday", "9": "my wife's birthday"})
        );
        assert_eq!(
            parse("[[['7 1 4'], ['6']], (1, -2.5, True, None)]").unwrap(),
            json!([[["7 1 4"], ["6"]], [1, -2.5, true, null]])
        );
        assert_eq!(
            parse(r"['a\'b', 'c\\d\n', '\x41']").unwrap(),
            json!(["a'b", "c\\d\n", "A"])
        );
        assert_eq!(parse("{1: 'x',}").unwrap(), json!({"1": "x"}));
        assert!(parse("['open").is_err());
        assert!(parse("[1, 2] x").is_err());
        assert!(parse("{'a' 1}").is_err());
    }
}
