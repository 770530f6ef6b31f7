//! A short, safe quote of what a peer answered, for error messages people read.
//!
//! Peers' error bodies say why (a missing profile, a field Actito refused), so the
//! event page shows them, but bounded and redacted: at most the first 4 KiB is read,
//! values under credential-like names, the secrets we sent (they may be echoed) and
//! email addresses are masked, and the text is cut to [`MAX_CHARS`].

use serde_json::Value;

/// How much of an answer is read at most.
pub const MAX_BYTES: usize = 4 * 1024;
/// How long a quote is at most.
pub const MAX_CHARS: usize = 200;

const REDACTED: &str = "[redacted]";
const EMAIL: &str = "[email]";

/// The first [`MAX_BYTES`] of an answer's body (less when the connection fails).
pub async fn read_bounded(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BYTES {
            break;
        }
    }
    body
}

/// A one-line, redacted quote of `body`; `None` when there is nothing to quote.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(mut json) => {
            mask_credentials(&mut json);
            json.to_string()
        }
        // Cut at 4 KiB, or not JSON at all: mask `"name": "value"` pairs in the text.
        Err(_) => mask_credential_pairs(&text),
    };
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, REDACTED);
    }
    let text = mask_emails(&text);
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "key",
        "authorization",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|word| name.contains(word))
}

fn mask_credentials(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                if is_credential_name(name) {
                    *value = Value::String(REDACTED.into());
                } else {
                    mask_credentials(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_credentials),
        _ => {}
    }
}

/// In text that may be JSON cut short, replaces the string after each
/// `"credential-like name":` with `"[redacted]"` (to the end when it is unterminated).
fn mask_credential_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut last_name_is_credential = false;
    while let Some(open) = rest.find('"') {
        let (before, from) = rest.split_at(open);
        let value_follows_name = last_name_is_credential && before.trim() == ":";
        out.push_str(before);
        let end = string_end(&from[1..]).map(|i| i + 2);
        let (quoted, after) = from.split_at(end.unwrap_or(from.len()));
        if value_follows_name {
            out.push_str("\"[redacted]\"");
            last_name_is_credential = false;
        } else {
            out.push_str(quoted);
            let inner = quoted.trim_matches('"');
            last_name_is_credential =
                after.trim_start().starts_with(':') && is_credential_name(inner);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Where the JSON string starting at `s` (after its opening quote) ends, if it does.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// Replaces each word-like run around an `@` that has a dot after it with `[email]`.
fn mask_emails(text: &str) -> String {
    let is_part = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_part(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let domain_len = rest[at + 1..]
            .char_indices()
            .take_while(|(_, c)| is_part(*c))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        let domain = &rest[at + 1..at + 1 + domain_len];
        if start < at && domain.contains('.') {
            out.push_str(&rest[..start]);
            out.push_str(EMAIL);
        } else {
            out.push_str(&rest[..at + 1 + domain_len]);
        }
        rest = &rest[at + 1 + domain_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_sent_secrets_and_emails_are_masked() {
        let body = br#"{"message":"profile of jane.doe@example.com refused",
            "accessToken":"abc123","echo":"Bearer sent-token-42","detail":{"apiKey":"k"}}"#;
        let quote = excerpt(body, &["sent-token-42"]).unwrap();
        assert!(quote.contains("profile of [email] refused"), "{quote}");
        assert!(!quote.contains("jane.doe"), "{quote}");
        assert!(!quote.contains("abc123"), "{quote}");
        assert!(!quote.contains("sent-token-42"), "{quote}");
        assert!(quote.contains(r#""apiKey":"[redacted]""#), "{quote}");
        assert!(quote.contains("Bearer [redacted]"), "{quote}");
    }

    #[test]
    fn credentials_are_masked_in_json_cut_short() {
        let body = br#"{"message":"no \"x\"", "token" : "abc123", "n": 1, "secret": "unterminat"#;
        let quote = excerpt(body, &[]).unwrap();
        assert_eq!(
            quote,
            r#"{"message":"no \"x\"", "token" : "[redacted]", "n": 1, "secret": "[redacted]""#
        );
    }

    #[test]
    fn long_answers_are_cut_and_flattened() {
        let body = format!("<html>\n  <body>{}</body></html>", "é".repeat(1_000));
        let quote = excerpt(body.as_bytes(), &[]).unwrap();
        assert_eq!(quote.chars().count(), MAX_CHARS + 1, "{quote}");
        assert!(quote.ends_with('…'));
        assert!(!quote.contains('\n'));
        assert_eq!(excerpt(b"  \n ", &[]), None);
    }

    #[test]
    fn an_at_sign_that_is_not_an_email_stays() {
        assert_eq!(
            excerpt(b"rate @ 5/s, see ops@team", &[]).unwrap(),
            "rate @ 5/s, see ops@team"
        );
        assert_eq!(excerpt(b"to a@b.co.", &[]).unwrap(), "to [email]");
    }
}
