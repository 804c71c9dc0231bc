//! How a request's path is matched against the paths rules name (`bypass_paths`,
//! `upload_paths`, `checkout_paths`, the shield's login and API paths): as the origin's
//! router reads it, so a rule cannot be side-stepped by spelling a path differently.

use std::borrow::Cow;

/// Already in the form [`normalized`] gives: no escape, no empty, `.` or `..` segment, no
/// upper case, starting with `/`.
fn is_normal(path: &str) -> bool {
    path.starts_with('/')
        && !path.bytes().any(|b| b == b'%' || b.is_ascii_uppercase())
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

/// The path as the origin's router will read it, for matching rules against: percent-escapes
/// decoded, repeated slashes merged, `.` and `..` segments resolved, ASCII lower-cased.
/// `//cart/`, `/%63art/`, `/shop/../cart/` and `/CART/` all read `/cart/` (nginx merges
/// slashes and decodes before WordPress routes the request), so a bypass rule cannot be
/// side-stepped by spelling a path differently.
pub fn normalized(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    // A trailing slash (or a last `.`/`..` segment) keeps the path a directory.
    if out.is_empty()
        || decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
    {
        out.push('/');
    }
    out.make_ascii_lowercase();
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_the_router_reads_them() {
        for (raw, want) in [
            ("/", "/"),
            ("", "/"),
            ("//cart/", "/cart/"),
            ("/%63art/", "/cart/"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/../../etc", "/etc"),
            ("/Shop/Item", "/shop/item"),
            ("/caf%C3%A9/", "/café/"),
            ("/bad%ZZ", "/bad%zz"),
        ] {
            assert_eq!(normalized(raw), want, "{raw}");
        }
    }

    #[test]
    fn a_normal_path_is_not_copied() {
        assert!(matches!(normalized("/shop/item-1/"), Cow::Borrowed(_)));
        assert!(matches!(normalized("/Shop/"), Cow::Owned(_)));
    }
}
