//! Chat prompts: renders the GGUF's own Jinja chat template (minijinja, Python-compatible
//! string methods), falling back to ChatML when a model has none.

use serde::Serialize;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Errors from rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat template failed: {0}")]
    Template(String),
}

/// The ChatML template used when a model ships none.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Renders `messages` with `template` (or ChatML). `bos`/`eos` fill the template's
/// `bos_token` / `eos_token` variables.
pub fn render_chat(
    template: Option<&str>,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos: &str,
    eos: &str,
) -> Result<String, ChatError> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_function("strftime_now", |_fmt: String| -> String {
        // Deterministic prompts: templates only use this for a "today" line.
        "26 Jul 2024".to_string()
    });
    let src = template.unwrap_or(CHATML_TEMPLATE);
    env.add_template("chat", src)
        .map_err(|e| ChatError::Template(e.to_string()))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| ChatError::Template(e.to_string()))?;
    tmpl.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos,
        eos_token => eos,
    })
    .map_err(|e| ChatError::Template(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders_exactly() {
        let msgs = [
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
        ];
        let s = render_chat(None, &msgs, true, "", "").unwrap();
        assert_eq!(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let t = "{{ bos_token }}{% for m in messages %}{% if m.role == 'x' %}{{ raise_exception('bad role') }}{% endif %}{{ m.content.strip() | upper }}{% endfor %}";
        let s = render_chat(
            Some(t),
            &[ChatMessage::new("user", "  hi  ")],
            false,
            "<s>",
            "",
        )
        .unwrap();
        assert_eq!(s, "<s>HI");
        let e = render_chat(Some(t), &[ChatMessage::new("x", "a")], false, "", "").unwrap_err();
        assert!(e.to_string().contains("bad role"), "{e}");
        assert!(render_chat(Some("{% for %}"), &[], false, "", "").is_err());
    }
}
