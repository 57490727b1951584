//! Reading a streamed answer: server-sent events (`data:` lines of chat or text chunks,
//! `:` comment pings, `data: [DONE]`), each content delta reported as it arrives, the final
//! usage chunk read into the [`Completion`]. A hostile or broken stream (an endless line, an
//! error object mid-stream, an early end) is an error naming the endpoint.

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use serde_json::Value;

use super::convert::{apply_usage, finish_reason};
use crate::wire::{ChatCompletionChunk, CompletionResponse, ErrorEnvelope};
use crate::{BackendError, Completion, Flow, OnEvent, Result, StreamEvent};

/// Longest SSE line accepted (a chunk carries a few tokens; this only stops runaway input).
const MAX_LINE_BYTES: u64 = 8 << 20;

/// Which endpoint's chunks the stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `chat.completion.chunk`: `choices[0].delta.content`.
    Chat,
    /// `text_completion`: `choices[0].text`.
    Text,
}

fn bad(url: &str, detail: String) -> BackendError {
    BackendError::BadResponse {
        endpoint: url.to_string(),
        detail,
    }
}

/// The text and finish reason of one chunk's first choice, and its usage.
fn parse_chunk(
    data: &str,
    kind: Kind,
    url: &str,
    c: &mut Completion,
) -> Result<(Option<String>, Option<String>)> {
    let v: Value = serde_json::from_str(data).map_err(|e| {
        bad(
            url,
            format!(
                "stream chunk is not JSON ({e}): {}",
                super::snippet(data, 200)
            ),
        )
    })?;
    if v.get("error").is_some() {
        let message = serde_json::from_value::<ErrorEnvelope>(v.clone())
            .map(|e| e.error.message)
            .unwrap_or_else(|_| super::snippet(data, 300));
        return Err(bad(
            url,
            format!("the server reported an error mid-stream: {message}"),
        ));
    }
    let unexpected = |e: serde_json::Error| {
        bad(
            url,
            format!(
                "unexpected stream chunk ({e}): {}",
                super::snippet(data, 200)
            ),
        )
    };
    match kind {
        Kind::Chat => {
            let chunk: ChatCompletionChunk = serde_json::from_value(v).map_err(unexpected)?;
            apply_usage(c, chunk.usage.as_ref());
            Ok(chunk
                .choices
                .into_iter()
                .next()
                .map_or((None, None), |ch| (ch.delta.content, ch.finish_reason)))
        }
        Kind::Text => {
            let chunk: CompletionResponse = serde_json::from_value(v).map_err(unexpected)?;
            apply_usage(c, chunk.usage.as_ref());
            Ok(chunk
                .choices
                .into_iter()
                .next()
                .map_or((None, None), |ch| (Some(ch.text), ch.finish_reason)))
        }
    }
}

/// Reads an SSE answer to its end, reporting each piece of text to `on_event`.
pub fn read_stream(
    body: impl Read,
    url: &str,
    kind: Kind,
    started: Instant,
    on_event: &mut OnEvent<'_>,
) -> Result<Completion> {
    let mut reader = BufReader::new(body);
    let mut c = Completion::default();
    let mut first_text: Option<Instant> = None;
    let mut finished = false;
    let mut done = false;
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_line(&mut line)
            .map_err(|e| BackendError::Io {
                endpoint: url.to_string(),
                detail: format!("reading the stream: {e}"),
            })?;
        if n == 0 {
            break;
        }
        if n as u64 > MAX_LINE_BYTES {
            return Err(bad(
                url,
                format!("a stream line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let Some(data) = line.trim_end_matches(['\r', '\n']).strip_prefix("data:") else {
            continue; // comments (`:` pings), blank lines, `event:`/`id:`/`retry:` fields
        };
        let data = data.trim_start();
        if data == "[DONE]" {
            done = true;
            break;
        }
        let (text, finish) = parse_chunk(data, kind, url, &mut c)?;
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            first_text.get_or_insert_with(Instant::now);
            c.text.push_str(&t);
            if on_event(StreamEvent::Text(&t)) == Flow::Stop {
                return Err(BackendError::Cancelled);
            }
        }
        if let Some(f) = finish {
            c.finish = finish_reason(Some(&f));
            finished = true;
        }
    }
    if !done && !finished {
        return Err(BackendError::Io {
            endpoint: url.to_string(),
            detail: "the stream ended before a finish_reason or [DONE]".into(),
        });
    }
    let end = Instant::now();
    let first = first_text.unwrap_or(end);
    c.latency = end - started;
    c.prefill_time = first - started;
    c.decode_time = end - first;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FinishReason;

    fn read(body: &str, kind: Kind) -> (Result<Completion>, Vec<String>) {
        let mut seen = Vec::new();
        let r = read_stream(
            body.as_bytes(),
            "http://x/v1",
            kind,
            Instant::now(),
            &mut |e| {
                if let StreamEvent::Text(t) = e {
                    seen.push(t.to_string());
                }
                Flow::Continue
            },
        );
        (r, seen)
    }

    #[test]
    fn chat_stream_with_pings_and_usage() {
        let body = concat!(
            ": ping\n\n",
            "data: {\"id\":\"a\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"a\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Par\"},\"finish_reason\":null}]}\r\n\r\n",
            "data:{\"id\":\"a\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is\"},\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"id\":\"a\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
            "data: [DONE]\n\n"
        );
        let (r, seen) = read(body, Kind::Chat);
        let c = r.unwrap();
        assert_eq!(seen, vec!["Par", "is"]);
        assert_eq!(
            (
                c.text.as_str(),
                c.finish,
                c.prompt_tokens,
                c.completion_tokens,
                c.cached_tokens
            ),
            ("Paris", FinishReason::Length, 9, 2, 4)
        );
    }

    #[test]
    fn text_stream_and_broken_streams() {
        let body = "data: {\"choices\":[{\"text\":\" one\",\"finish_reason\":null}]}\n\ndata: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\n";
        let (r, seen) = read(body, Kind::Text);
        assert_eq!(
            (r.unwrap().text, seen),
            (" one".to_string(), vec![" one".to_string()])
        );
        let (r, _) = read("data: {\"choices\":[{\"text\":\"a\"}]}\n\n", Kind::Text);
        assert!(r.unwrap_err().to_string().contains("ended before"));
        let (r, _) = read(
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
            Kind::Chat,
        );
        assert!(r.unwrap_err().to_string().contains("mid-stream: boom"));
        let (r, _) = read("data: nope\n\n", Kind::Chat);
        assert!(r.unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn the_consumer_can_stop_the_stream() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let mut n = 0;
        let r = read_stream(
            body.as_bytes(),
            "u",
            Kind::Chat,
            Instant::now(),
            &mut |_| {
                n += 1;
                Flow::Stop
            },
        );
        assert!(matches!(r, Err(BackendError::Cancelled)));
        assert_eq!(n, 1);
    }
}
