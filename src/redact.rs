//! Secrets never leave the process: every line the binary prints (metrics,
//! the XCom file, logs) passes through `scrub`, which masks the password of
//! any `scheme://user:password@host` URL and the values of the credential
//! settings.

use std::sync::OnceLock;

const MASK: &str = "***";

/// Values shorter than this are not masked on their own: masking "a" would
/// garble every message. A URL password is masked whatever its length.
const MIN_SECRET_LEN: usize = 4;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Remembers the credential values of this process (the settings'
/// secrets and URL passwords), once, before anything is printed.
pub(crate) fn remember(values: Vec<String>) {
    let mut secrets: Vec<String> = values
        .into_iter()
        .flat_map(|value| {
            // A PEM key is printed, if at all, line by line.
            let lines: Vec<String> = value.lines().map(str::to_string).collect();
            std::iter::once(value).chain(lines)
        })
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .collect();
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let _ = SECRETS.set(secrets);
}

/// `text` with URL passwords and remembered secrets masked.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = mask_url_passwords(text);
    for secret in SECRETS.get().map(Vec::as_slice).unwrap_or_default() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// The password of `scheme://user:password@host...`, if it has one.
pub(crate) fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..authority_end(rest)];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_string())
}

fn authority_end(rest: &str) -> usize {
    rest.find(|c: char| {
        c == '/' || c == '?' || c == '#' || c.is_whitespace() || matches!(c, '"' | '\'' | '`')
    })
    .unwrap_or(rest.len())
}

fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = authority_end(tail);
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_wherever_they_appear() {
        let text = "PIPELINE_METADATA_URL: cannot reach postgres://pipeline:s3cr%2Ft@db:5432/meta \
                    (also \"snowflake://u:p@host\") and file:///tmp/x";
        let scrubbed = scrub(text);
        assert!(!scrubbed.contains("s3cr%2Ft"), "{scrubbed}");
        assert!(scrubbed.contains("postgres://pipeline:***@db:5432/meta"));
        assert!(scrubbed.contains("snowflake://u:***@host"));
        assert!(scrubbed.contains("file:///tmp/x"));
        assert_eq!(scrub("s3://bucket/key"), "s3://bucket/key");
        assert_eq!(scrub("user@example.com"), "user@example.com");
    }

    #[test]
    fn the_password_of_a_url_is_found() {
        assert_eq!(url_password("postgres://u:pw@h/db").as_deref(), Some("pw"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("sqlite://./x.db"), None);
    }
}
