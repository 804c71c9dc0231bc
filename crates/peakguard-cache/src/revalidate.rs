//! A 304 while revalidating (RFC 9111 §4.3.4): its header fields update the stored
//! response. Pingora merges only a few of them; the edge keeps the rest from the 304
//! ([`fields_kept`]) and merges them into the header pingora hands back ([`merge`]) before
//! the response is judged storable again.

use pingora_http::ResponseHeader;

/// Fields of a 304 that describe that message, not the stored representation, and those
/// the stored body depends on (RFC 9111 §3.2: its digest): never merged.
const NOT_MERGED: [&str; 7] = [
    "content-length",
    "content-md5",
    "transfer-encoding",
    "content-encoding",
    "content-range",
    "connection",
    "keep-alive",
];

/// The fields of a 304 that update the stored response.
pub fn fields_kept(not_modified: &http::HeaderMap) -> http::HeaderMap {
    let mut fields = not_modified.clone();
    for name in NOT_MERGED {
        fields.remove(name);
    }
    fields
}

/// `stored` (the header pingora merged) with every field of `fields` replacing its own.
pub fn merge(
    stored: &ResponseHeader,
    fields: &http::HeaderMap,
) -> pingora_error::Result<ResponseHeader> {
    let mut merged = stored.clone();
    for name in fields.keys() {
        let mut values = fields.get_all(name).iter();
        if let Some(first) = values.next() {
            merged.insert_header(name.clone(), first.clone())?;
            for v in values {
                merged.append_header(name.clone(), v.clone())?;
            }
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_304s_fields_replace_the_stored_ones_but_not_those_of_the_message() {
        let mut stored = ResponseHeader::build(200, None).expect("header");
        stored
            .insert_header("cache-control", "max-age=60")
            .expect("h");
        stored.insert_header("content-length", "1234").expect("h");
        stored.insert_header("etag", "\"a\"").expect("h");
        let mut not_modified = http::HeaderMap::new();
        not_modified.insert("cache-control", "max-age=600".parse().expect("v"));
        not_modified.insert("content-length", "0".parse().expect("v"));
        not_modified.append("link", "</a.css>; rel=preload".parse().expect("v"));
        not_modified.append("link", "</b.js>; rel=preload".parse().expect("v"));
        let merged = merge(&stored, &fields_kept(&not_modified)).expect("merge");
        assert_eq!(merged.headers["cache-control"], "max-age=600");
        assert_eq!(
            merged.headers["content-length"], "1234",
            "the stored body's length"
        );
        assert_eq!(merged.headers["etag"], "\"a\"");
        assert_eq!(merged.headers.get_all("link").iter().count(), 2);
    }
}
