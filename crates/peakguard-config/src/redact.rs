//! Secrets out of what peakguard shows: the password in a repository URL
//! (`rest:https://user:PASSWORD@host/`) and the values of query parameters that carry
//! credentials (a WordPress password-reset `key`, `pwd`, tokens, signatures). Logs, `/status`
//! and error messages show the redacted form; the real value is only ever used, never shown.

use std::borrow::Cow;

/// What replaces a secret.
pub const HIDDEN: &str = "***";

/// Query parameters whose values are secrets (compared without case).
const SECRET_PARAMS: &[&str] = &[
    "key",
    "rp_key",
    "pwd",
    "pass",
    "pass1",
    "pass2",
    "password",
    "token",
    "access_token",
    "secret",
    "secret_key",
    "access_key",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "sig",
    "auth",
];

fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// `path?query` with the values of secret parameters replaced.
pub fn query(path_and_query: &str) -> Cow<'_, str> {
    let Some((path, q)) = path_and_query.split_once('?') else {
        return Cow::Borrowed(path_and_query);
    };
    let secret = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(n, v)| !v.is_empty() && is_secret_param(n))
    };
    if !q.split('&').any(secret) {
        return Cow::Borrowed(path_and_query);
    }
    let pairs: Vec<String> = q
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((n, _)) if secret(pair) => format!("{n}={HIDDEN}"),
            _ => pair.to_string(),
        })
        .collect();
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

/// A repository location or URL with its password (and secret query values) replaced:
/// `rest:https://user:pw@host/repo` → `rest:https://user:***@host/repo`.
pub fn location(location: &str) -> Cow<'_, str> {
    let with_query = query(location);
    let Some(scheme_end) = with_query.find("://") else {
        return with_query;
    };
    let authority_start = scheme_end + 3;
    let rest = &with_query[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return with_query;
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return with_query;
    };
    let user = &userinfo[..colon];
    Cow::Owned(format!(
        "{}{user}:{HIDDEN}{}",
        &with_query[..authority_start],
        &with_query[authority_start + at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_keys_and_passwords_in_queries_are_hidden() {
        assert_eq!(
            query("/wp-login.php?action=rp&key=Zx81kQ&login=bob"),
            "/wp-login.php?action=rp&key=***&login=bob"
        );
        assert_eq!(query("/?PWD=hunter2&s=shoes"), "/?PWD=***&s=shoes");
        assert!(matches!(query("/?s=shoes&p=2"), Cow::Borrowed(_)));
        assert!(matches!(query("/shop/"), Cow::Borrowed(_)));
        assert_eq!(query("/?key="), "/?key=", "nothing to hide");
    }

    #[test]
    fn repository_passwords_are_hidden() {
        assert_eq!(
            location("rest:https://backup:s3cr3t@bunker.example:8000/shop/"),
            "rest:https://backup:***@bunker.example:8000/shop/"
        );
        assert_eq!(
            location("rest:https://u:p@ss@host/r"),
            "rest:https://u:***@host/r",
            "the last @ ends the user info"
        );
        assert_eq!(
            location("s3:https://s3.example/bucket?access_key=AKIA&secret_key=xyz"),
            "s3:https://s3.example/bucket?access_key=***&secret_key=***"
        );
        for plain in [
            "/var/lib/peakguard/repo",
            "sftp:backup@host:/srv/repo",
            "rest:https://host/r",
        ] {
            assert_eq!(location(plain), plain);
        }
    }
}
