use super::*;
use pingora_http::ResponseHeader;

fn accepted(values: &[&str]) -> Accepted {
    Accepted::parse(values.iter().map(|v| v.as_bytes()))
}

const ALL: [Coding; 3] = [Coding::Identity, Coding::Gzip, Coding::Brotli];

#[test]
fn accept_encoding_is_chosen_by_q_value_then_by_size() {
    let cases: &[(&[&str], Option<Coding>)] = &[
        (&[], Some(Coding::Identity)),
        (&[""], Some(Coding::Identity)),
        (&["gzip, deflate, br"], Some(Coding::Brotli)),
        (&["gzip, deflate, br, zstd"], Some(Coding::Brotli)),
        (&["gzip"], Some(Coding::Gzip)),
        (&["x-gzip"], Some(Coding::Gzip)),
        (&["br;q=0.5, gzip;q=0.8"], Some(Coding::Gzip)),
        (&["br;q=0, gzip;q=0"], Some(Coding::Identity)),
        (&["gzip;q=0", "br"], Some(Coding::Brotli)),
        (&["*"], Some(Coding::Brotli)),
        (&["*;q=0.5, identity"], Some(Coding::Identity)),
        (&["identity;q=0, gzip;q=0.1"], Some(Coding::Gzip)),
        (&["identity;q=0"], None),
        (&["*;q=0"], None),
        (&["*;q=0, identity"], Some(Coding::Identity)),
        (&["gzip;q=1.0, br;q=0.999"], Some(Coding::Gzip)),
        (&["GZIP, BR"], Some(Coding::Brotli)),
        // A malformed weight accepts nothing rather than everything.
        (&["br;q=2, gzip;q=abc"], Some(Coding::Identity)),
        (&["br;q=0.0001"], Some(Coding::Identity)),
        (&["deflate, compress"], Some(Coding::Identity)),
    ];
    for (values, want) in cases {
        assert_eq!(accepted(values).choose(ALL), *want, "{values:?}");
    }
}

#[test]
fn a_coding_that_is_not_stored_is_never_chosen() {
    let a = accepted(&["br, gzip"]);
    assert_eq!(
        a.choose([Coding::Identity, Coding::Gzip]),
        Some(Coding::Gzip)
    );
    assert_eq!(a.choose([Coding::Identity]), Some(Coding::Identity));
    let no_identity = accepted(&["br, identity;q=0"]);
    assert_eq!(no_identity.choose([Coding::Identity, Coding::Gzip]), None);
}

fn html(len: usize) -> ResponseHeader {
    let mut h = ResponseHeader::build(200, None).unwrap();
    h.insert_header("content-type", "text/html; charset=UTF-8")
        .unwrap();
    h.insert_header("content-length", len.to_string()).unwrap();
    h
}

#[test]
fn policy_compresses_text_and_leaves_images_small_bodies_and_no_transform() {
    let p = CompressionPolicy::default();
    assert!(p.applies(&html(4096), 4096));
    assert!(!p.applies(&html(100), 100), "below min_size");
    for ct in [
        "text/css",
        "application/javascript",
        "application/json",
        "image/svg+xml",
        "application/rss+xml",
        "TEXT/PLAIN; charset=utf-8",
    ] {
        let mut h = html(4096);
        h.insert_header("content-type", ct).unwrap();
        assert!(p.applies(&h, 4096), "{ct}");
    }
    for ct in [
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "application/zip",
        "application/pdf",
        "font/woff2",
        "application/octet-stream",
    ] {
        let mut h = html(4096);
        h.insert_header("content-type", ct).unwrap();
        assert!(!p.applies(&h, 4096), "{ct}");
    }
    let mut h = html(4096);
    h.insert_header("cache-control", "public, no-transform")
        .unwrap();
    assert!(!p.applies(&h, 4096));
    let mut h = html(4096);
    h.insert_header("content-encoding", "zstd").unwrap();
    assert!(
        !p.applies(&h, 4096),
        "an unknown coding is never transcoded"
    );
    let mut h = ResponseHeader::build(404, None).unwrap();
    h.insert_header("content-type", "text/html").unwrap();
    assert!(!p.applies(&h, 4096));
}

#[test]
fn codecs_round_trip_and_decoding_is_bounded() {
    let text = "<article>Spring sale: everything must go.</article>\n".repeat(2000);
    for coding in [Coding::Gzip, Coding::Brotli] {
        let packed = encode(coding, text.as_bytes(), 6).unwrap();
        assert!(
            packed.len() < text.len() / 10,
            "{coding:?}: {}",
            packed.len()
        );
        assert_eq!(
            decode(coding, &packed, text.len()).unwrap(),
            text.as_bytes()
        );
        assert!(
            decode(coding, &packed, text.len() - 1).is_err(),
            "{coding:?}: a body inflating past the limit is refused"
        );
        assert!(decode(coding, b"not compressed at all", 1 << 20).is_err());
    }
    assert!(encode(Coding::Identity, b"x", 1).is_err());
}

#[test]
fn representation_headers_carry_coding_length_vary_and_a_weak_etag() {
    let mut base = html(5000);
    base.insert_header("etag", "\"v1\"").unwrap();
    base.insert_header("vary", "Cookie").unwrap();
    let br = representation_header(&base, Coding::Identity, Coding::Brotli, 900);
    assert_eq!(br.headers["content-encoding"], "br");
    assert_eq!(br.headers["content-length"], "900");
    assert_eq!(br.headers["etag"], "W/\"v1\"");
    assert_eq!(br.headers["vary"], "Cookie, Accept-Encoding");
    let same = representation_header(&base, Coding::Identity, Coding::Identity, 5000);
    assert_eq!(
        same.headers["etag"], "\"v1\"",
        "the origin's bytes keep its ETag"
    );
    assert!(same.headers.get("content-encoding").is_none());

    let mut star = html(1);
    star.insert_header("vary", "*").unwrap();
    ensure_vary_accept_encoding(&mut star);
    assert_eq!(star.headers["vary"], "*");

    let mut bad = html(1);
    bad.insert_header("etag", "unquoted").unwrap();
    weaken_etag(&mut bad);
    assert!(bad.headers.get("etag").is_none());
}

#[test]
fn a_revalidated_header_is_rebased_on_the_stored_representation() {
    let mut base = html(5000);
    base.insert_header("etag", "\"v1\"").unwrap();
    base.insert_header("vary", "Accept-Encoding").unwrap();
    let mut served = representation_header(&base, Coding::Identity, Coding::Brotli, 900);
    served
        .insert_header("cache-control", "max-age=600")
        .unwrap();
    let rebased = rebase_header(&served, &base);
    assert!(rebased.headers.get("content-encoding").is_none());
    assert_eq!(rebased.headers["content-length"], "5000");
    assert_eq!(rebased.headers["etag"], "\"v1\"");
    assert_eq!(rebased.headers["cache-control"], "max-age=600");
}
