//! The little HTML toolkit the pages share: escaping and the page frame.
//! Every value that comes from a row or a request goes through [`esc`].

use std::fmt::Write;

/// `text` escaped for HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for a URL query value.
pub fn query_value(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Who the page is for, as the frame shows it.
pub struct Viewer<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub read_only: bool,
}

/// A whole page: head (vendored CSS and JS only, nothing from a CDN), the
/// navigation bar with the viewer and a logout button, then `body`.
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let nav = match viewer {
        Some(v) => format!(
            r#"<nav><a href="/" class="brand">videoclip</a><a href="/">Overview</a><a href="/tasks">Tasks</a>
<span class="spacer"></span>{ro}<span class="who">{user}</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button>Log out</button></form></nav>"#,
            ro = if v.read_only { r#"<span class="badge">read-only</span>"# } else { "" },
            user = esc(v.username),
            csrf = esc(v.csrf),
        ),
        None => r#"<nav><a href="/" class="brand">videoclip</a></nav>"#.to_string(),
    };
    let csrf_meta = viewer.map(|v| esc(v.csrf)).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf_meta}">
<title>{title} · videoclip</title><link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>
<body>{nav}<main>{body}</main></body></html>"#,
        title = esc(title),
    )
}

/// A status name as a coloured badge.
pub fn status_badge(status: &str) -> String {
    format!(r#"<span class="status status-{s}" data-status>{s}</span>"#, s = esc(status))
}

/// Seconds as `1h 02m`, `3m 04s` or `5s`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(query_value("a b&c/é"), "a%20b%26c%2F%C3%A9");
        assert_eq!(duration(3725), "1h 02m");
        assert_eq!(duration(64), "1m 04s");
    }
}
