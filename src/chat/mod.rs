//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja the way
//! HF transformers' `apply_chat_template` renders it with jinja2:
//!
//! * `trim_blocks` and `lstrip_blocks` on, trailing newline of the template dropped;
//! * context: `messages` (list of `{role, content}`), `add_generation_prompt`, `bos_token`,
//!   `eos_token`, and `tools` / `documents` set to none (as transformers passes them);
//! * globals `raise_exception(msg)` (fails the render with `msg`) and `strftime_now(fmt)`;
//! * Python string/dict/list methods (`.strip()`, `.startswith()`, `.items()`, …) through
//!   `minijinja_contrib::pycompat`, and a `tojson` filter that formats like Python's
//!   `json.dumps` (`", "`/`": "` separators, no HTML escaping, `indent`, `sort_keys`,
//!   `ensure_ascii`, `separators`);
//! * `{% generation %}` / `{% endgeneration %}` (a transformers extension marking assistant
//!   text) are accepted and render their body.
//!
//! Templates come from untrusted files: every render runs on a fuel budget (an instruction
//! count), the output is capped, and syntax or runtime errors are [`Error::Template`]. Not
//! bounded: the size of intermediate strings a template builds without writing them out.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, ErrorKind, Value as JValue};

use crate::gguf::Metadata;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Instructions one render may execute. SmolLM2's template takes 38 for one message and about
/// 23 per further message, so this leaves room for very long conversations with templates
/// ten times as elaborate, while a runaway template stops within about a second.
pub const RENDER_FUEL: u64 = 5_000_000;
/// Largest rendered prompt, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 64 << 20;

const TEMPLATE_NAME: &str = "chat_template";

/// ChatML, used by [`ChatTemplate::chatml`] for models without a template (llama.cpp's
/// fallback as well): `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` when a generation prompt is asked for.
pub const CHATML_TEMPLATE: &str = "{%- for message in messages -%}\n\
    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n\
    {%- endfor -%}\n\
    {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// A compiled chat template. `Send + Sync`; render as often as needed.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Unix time `strftime_now` reports; `i64::MIN` = the system clock (UTC).
    clock: Arc<AtomicI64>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is an [`Error::Template`].
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let clock = Arc::new(AtomicI64::new(i64::MIN));
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_fuel(Some(RENDER_FUEL));
        env.set_recursion_limit(100);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<JValue, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("raise_exception: {msg}")))
        });
        let c = clock.clone();
        env.add_function("strftime_now", move |fmt: String| -> std::result::Result<JValue, minijinja::Error> {
            let now = match c.load(Ordering::Relaxed) {
                i64::MIN => system_time()?,
                t => t,
            };
            Ok(JValue::from(strftime(&fmt, now)))
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, accept_generation_tags(source))
            .map_err(|e| template_error("cannot compile the chat template", &e))?;
        Ok(Self { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string(), clock })
    }

    /// The GGUF's `tokenizer.chat_template`, with `bos_token`/`eos_token` set to the vocabulary
    /// strings of the tokenizer's BOS/EOS (empty when it has none). `Ok(None)` when the file
    /// has no template (see [`ChatTemplate::chatml`] for a fallback).
    pub fn from_metadata(md: &Metadata, tok: &Tokenizer) -> Result<Option<Self>> {
        let Some(source) = md.get_str("tokenizer.chat_template")? else { return Ok(None) };
        let piece = |id: Option<u32>| id.and_then(|id| tok.token_str(id)).unwrap_or("");
        Self::new(source, piece(tok.bos_id()), piece(tok.eos_id())).map(Some)
    }

    /// The ChatML template ([`CHATML_TEMPLATE`]), a reasonable default for models without one.
    pub fn chatml(bos_token: &str, eos_token: &str) -> Self {
        match Self::new(CHATML_TEMPLATE, bos_token, eos_token) {
            Ok(t) => t,
            // The constant template compiles; this arm is unreachable in practice.
            Err(e) => panic!("built-in ChatML template: {e}"),
        }
    }

    /// Fixes the time `strftime_now` reports (Unix seconds, formatted as UTC); `None` = the
    /// system clock (in the browser, `Date.now()`).
    pub fn set_time(&self, unix_secs: Option<i64>) {
        self.clock.store(unix_secs.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders the conversation. The result is meant to be tokenized with
    /// `parse_special = true` (the template writes control tokens as text).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error("cannot load the chat template", &e))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            tools => JValue::from(()),
            documents => JValue::from(()),
        };
        let mut out = CappedWriter { buf: Vec::new(), limit: MAX_OUTPUT_BYTES };
        tmpl.render_captured_to(ctx, &mut out).map_err(|e| template_error("rendering the chat template failed", &e))?;
        String::from_utf8(out.buf).map_err(|_| Error::Template("the chat template produced invalid UTF-8".into()))
    }
}

/// A clear message for a minijinja error: the kind, the detail, the line, and a hint for
/// fuel exhaustion.
fn template_error(context: &str, e: &minijinja::Error) -> Error {
    let mut msg = match e.kind() {
        ErrorKind::OutOfFuel => format!(
            "{context}: the template ran longer than allowed ({RENDER_FUEL} instructions); \
             it may loop forever"
        ),
        ErrorKind::WriteFailure => {
            format!("{context}: the output is larger than allowed ({MAX_OUTPUT_BYTES} bytes)")
        }
        _ => format!("{context}: {e}"),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    Error::Template(msg)
}

struct CappedWriter {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            return Err(io::Error::other("chat template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Rewrites transformers' `{% generation %}` / `{% endgeneration %}` tags (which minijinja does
/// not know) into `{% if true %}` / `{% endif %}`, keeping whitespace-control markers.
fn accept_generation_tags(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The closing `%}` after the opening `{%` (in `{%}` they overlap).
        let Some(end) = tag[2..].find("%}").map(|e| e + 2) else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let body = inner.trim_start_matches(['-', '+']).trim_end_matches(['-', '+']);
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(r) => {
                let lead = &inner[..inner.len() - inner.trim_start_matches(['-', '+']).len()];
                let trail = &inner[inner.trim_end_matches(['-', '+']).len()..];
                out.push_str("{%");
                out.push_str(lead);
                out.push(' ');
                out.push_str(r);
                out.push(' ');
                out.push_str(trail);
                out.push_str("%}");
            }
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The system clock in Unix seconds (in the browser, `Date.now()`, through `web-time`).
fn system_time() -> std::result::Result<i64, minijinja::Error> {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| minijinja::Error::new(ErrorKind::InvalidOperation, "system clock is before 1970"))
}

/// Python's `strftime` for a UTC Unix time, for the common directives
/// (`%Y %y %m %d %e %H %I %M %S %p %j %a %A %b %B %h %Z %z %F %T %D %%`). Unknown directives
/// are copied as written.
fn strftime(fmt: &str, unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    const MONTHS: [&str; 12] = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ];
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let wday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let h12 = if hh % 12 == 0 { 12 } else { hh % 12 };
        match spec {
            'Y' => out.push_str(&y.to_string()),
            'y' => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            'm' => out.push_str(&format!("{m:02}")),
            'd' => out.push_str(&format!("{d:02}")),
            'e' => out.push_str(&format!("{d:2}")),
            'H' => out.push_str(&format!("{hh:02}")),
            'I' => out.push_str(&format!("{h12:02}")),
            'M' => out.push_str(&format!("{mm:02}")),
            'S' => out.push_str(&format!("{ss:02}")),
            'p' => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            'j' => out.push_str(&format!("{yday:03}")),
            'a' => out.push_str(&DAYS[wday][..3]),
            'A' => out.push_str(DAYS[wday]),
            'b' | 'h' => out.push_str(&month[..3]),
            'B' => out.push_str(month),
            'Z' => out.push_str("UTC"),
            'z' => out.push_str("+0000"),
            'F' => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            'T' => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            'D' => out.push_str(&format!("{m:02}/{d:02}/{:02}", y.rem_euclid(100))),
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`.
fn tojson(value: &JValue, indent: Option<JValue>, kwargs: Kwargs) -> std::result::Result<JValue, minijinja::Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<JValue>>("indent")?,
    };
    let indent: Option<String> = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => match v.kind() {
            ValueKind::String => Some(v.as_str().unwrap_or_default().to_string()),
            _ => Some(" ".repeat(usize::try_from(v).map_err(|_| {
                minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: indent must be an integer or a string")
            })?)),
        },
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let separators = kwargs.get::<Option<Vec<String>>>("separators")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators {
        Some(s) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        Some(_) => {
            return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: separators must be a pair"))
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let opts = JsonOpts { indent, item_sep, key_sep, sort_keys, ensure_ascii };
    let mut out = String::new();
    json_value(&mut out, value, &opts, 0, 0)?;
    Ok(JValue::from(out))
}

struct JsonOpts {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

fn json_value(
    out: &mut String,
    v: &JValue,
    o: &JsonOpts,
    level: usize,
    depth: usize,
) -> std::result::Result<(), minijinja::Error> {
    if depth > 128 {
        return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: value nested too deeply"));
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Ok(i) = i128::try_from(v.clone()) {
                out.push_str(&i.to_string());
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "null".into()));
                }
            }
        }
        ValueKind::String => json_str(out, v.as_str().unwrap_or_default(), o.ensure_ascii),
        ValueKind::Map => {
            let mut entries: Vec<(String, JValue)> = Vec::new();
            for k in v.try_iter()? {
                let val = v.get_item(&k)?;
                let key = match k.as_str() {
                    Some(s) => s.to_string(),
                    None => match k.kind() {
                        ValueKind::None => "null".to_string(),
                        ValueKind::Bool => (if k.is_true() { "true" } else { "false" }).to_string(),
                        _ => k.to_string(),
                    },
                };
                entries.push((key, val));
            }
            if o.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, o, level + 1);
                json_str(out, k, o.ensure_ascii);
                out.push_str(&o.key_sep);
                json_value(out, val, o, level + 1, depth + 1)?;
            }
            newline(out, o, level);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<JValue> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, o, level + 1);
                json_value(out, item, o, level + 1, depth + 1)?;
            }
            newline(out, o, level);
            out.push(']');
        }
        _ => json_str(out, &v.to_string(), o.ensure_ascii),
    }
    Ok(())
}

fn newline(out: &mut String, o: &JsonOpts, level: usize) {
    if let Some(ind) = &o.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

/// A JSON string literal with Python's escaping (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`,
/// other control characters as `\u00XX`; with `ensure_ascii` everything non-ASCII as `\uXXXX`).
fn json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7f) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shareable_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<ChatTemplate>();
        check::<Tokenizer>();
        check::<crate::tokenizer::StreamDecoder<std::sync::Arc<Tokenizer>>>();
    }

    #[test]
    fn strftime_known_dates() {
        // 2024-07-26 13:05:09 UTC, a Friday.
        let t = 1_722_000_000 - 1_722_000_000 % 86_400 + 13 * 3600 + 5 * 60 + 9;
        assert_eq!(strftime("%d %b %Y", t), "26 Jul 2024");
        assert_eq!(strftime("%A %B %e %H:%M:%S %p %j %y %%", t), "Friday July 26 13:05:09 PM 208 24 %");
        assert_eq!(strftime("%F %T %I", 0), "1970-01-01 00:00:00 12");
        assert_eq!(strftime("%Y-%m-%d %a", -1), "1969-12-31 Wed");
        assert_eq!(strftime("%Y-%m-%d", 951_782_400), "2000-02-29");
    }

    #[test]
    fn generation_tags_are_rewritten() {
        assert_eq!(
            accept_generation_tags("a{%- generation %}b{% endgeneration -%}c{% if x %}{% endif %}"),
            "a{%- if true %}b{% endif -%}c{% if x %}{% endif %}"
        );
    }

    #[test]
    fn tojson_matches_python() {
        let t = ChatTemplate::new(
            "{% set x = {'b': [1, 2.5, 'x\\n<y>'], 'a': {}, 'c': [], 'd': none, 'e': true} %}\
             {{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(sort_keys=true, separators=[',', ':']) }}|{{ 'é<' | tojson(ensure_ascii=true) }}",
            "",
            "",
        )
        .unwrap();
        let env = &t.env;
        let tmpl = env.get_template(TEMPLATE_NAME).unwrap();
        let out = tmpl
            .render(minijinja::context! {})
            .unwrap();
        assert_eq!(
            out,
            "{\"b\": [1, 2.5, \"x\\n<y>\"], \"a\": {}, \"c\": [], \"d\": null, \"e\": true}|\
             {\n  \"b\": [\n    1,\n    2.5,\n    \"x\\n<y>\"\n  ],\n  \"a\": {},\n  \"c\": [],\n  \"d\": null,\n  \"e\": true\n}|\
             {\"a\":{},\"b\":[1,2.5,\"x\\n<y>\"],\"c\":[],\"d\":null,\"e\":true}|\"\\u00e9<\""
        );
    }
}
