//! Stored representations: made once in the background, chosen per client, kept on disk,
//! purged together.

use super::*;
use crate::encoding::{Accepted, Coding, decode, encode};
use pingora_cache::trace::Span;
use pingora_http::ResponseHeader;
use std::time::{Duration, Instant, SystemTime};

fn storage(disk: Option<&std::path::Path>) -> &'static TieredStorage {
    let settings = StorageSettings {
        memory_bytes: 8 << 20,
        disk: disk.map(|d| (d.to_path_buf(), 64 << 20)),
        max_object_bytes: 4 << 20,
        tag_headers: vec!["cache-tag".into()],
        compression: crate::encoding::CompressionPolicy::default(),
        encoder_threads: 1,
    };
    let s: &'static TieredStorage = Box::leak(Box::new(
        TieredStorage::open(settings).expect("open storage"),
    ));
    s.start_encoders().expect("encoders");
    s.start_recovery().expect("recovery");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.recovered() {
        assert!(std::time::Instant::now() < deadline, "recovery never ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    s
}

fn page() -> Vec<u8> {
    let mut out = String::from("<!doctype html><title>Spring sale</title>");
    for i in 0..800 {
        out.push_str(&format!(
            "<li><a href=\"/product/{i}/\">Product {i}</a> 19.90</li>\n"
        ));
    }
    out.into_bytes()
}

fn meta(content_type: &str, extra: &[(&str, &str)]) -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).unwrap();
    h.insert_header("content-type", content_type).unwrap();
    h.insert_header("etag", "\"rev-7\"").unwrap();
    h.insert_header("cache-tag", "post-7").unwrap();
    for (k, v) in extra {
        h.insert_header(k.to_string(), *v).unwrap();
    }
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, h)
}

async fn put(s: &'static TieredStorage, url: &str, meta: &CacheMeta, body: &[u8]) {
    let span = Span::inactive().handle();
    let mut miss = s
        .get_miss_handler(&CacheKey::new(url, ""), meta, &span)
        .await
        .unwrap();
    miss.write_body(Bytes::copy_from_slice(body), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
}

/// The header and body a client with this `Accept-Encoding` gets.
async fn get(s: &'static TieredStorage, url: &str, ae: &str) -> (ResponseHeader, Vec<u8>) {
    let span = Span::inactive().handle();
    let mut key = CacheKey::new(url, "");
    key.extensions
        .insert(Accepted::parse(std::iter::once(ae.as_bytes())));
    let (meta, mut hit) = s.lookup(&key, &span).await.unwrap().expect("stored");
    let mut out = Vec::new();
    while let Some(b) = hit.read_body().await.unwrap() {
        out.extend_from_slice(&b);
    }
    (meta.response_header_copy(), out)
}

async fn wait_encoded(s: &'static TieredStorage, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.stats.encoded_objects.load(Ordering::Relaxed) < want {
        assert!(Instant::now() < deadline, "no encoding within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `base`: the coding the origin sent (its bytes keep the strong ETag).
fn check_representation(
    header: &ResponseHeader,
    body: &[u8],
    coding: Coding,
    base: Coding,
    identity: &[u8],
) {
    let ce = header.headers.get("content-encoding").map(|v| v.as_bytes());
    assert_eq!(Coding::from_content_encoding(ce), coding);
    assert_eq!(
        header.headers["content-length"],
        body.len().to_string().as_str()
    );
    assert!(
        header.headers["vary"]
            .to_str()
            .unwrap()
            .contains("Accept-Encoding")
    );
    let decoded = match coding {
        Coding::Identity => body.to_vec(),
        c => decode(c, body, 1 << 24).unwrap(),
    };
    assert_eq!(decoded, identity, "{coding:?} decodes to the identity body");
    let etag = header.headers["etag"].to_str().unwrap();
    if coding == base {
        assert_eq!(etag, "\"rev-7\"");
    } else {
        assert_eq!(etag, "W/\"rev-7\"");
    }
}

#[tokio::test]
async fn each_client_gets_its_coding_from_the_store() {
    let s = storage(None);
    let body = page();
    put(
        s,
        "http://a/sale/",
        &meta("text/html; charset=UTF-8", &[]),
        &body,
    )
    .await;
    wait_encoded(s, 1).await;
    for (ae, coding) in [
        ("gzip, deflate, br", Coding::Brotli),
        ("gzip", Coding::Gzip),
        ("br;q=0.4, gzip;q=0.9", Coding::Gzip),
        ("", Coding::Identity),
        ("identity", Coding::Identity),
        ("gzip;q=0, br;q=0", Coding::Identity),
        ("*", Coding::Brotli),
    ] {
        let (header, got) = get(s, "http://a/sale/", ae).await;
        check_representation(&header, &got, coding, Coding::Identity, &body);
    }
    // Compressed once: more hits queue nothing.
    let queued = s.stats.encode_queued.load(Ordering::Relaxed);
    for _ in 0..50 {
        get(s, "http://a/sale/", "gzip, br").await;
    }
    assert_eq!(s.stats.encode_queued.load(Ordering::Relaxed), queued);
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn images_and_small_bodies_are_stored_once_as_they_came() {
    let s = storage(None);
    let jpeg: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    put(s, "http://a/photo.jpg", &meta("image/jpeg", &[]), &jpeg).await;
    put(s, "http://a/tiny/", &meta("text/html", &[]), b"<p>hi</p>").await;
    for url in ["http://a/photo.jpg", "http://a/tiny/"] {
        let (header, _) = get(s, url, "gzip, deflate, br").await;
        assert!(header.headers.get("content-encoding").is_none(), "{url}");
    }
    assert_eq!(s.stats.encode_queued.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_origin_compressed_body_is_stored_as_it_came_and_gains_identity() {
    let s = storage(None);
    let body = page();
    let gz = encode(Coding::Gzip, &body, 6).unwrap();
    put(
        s,
        "http://a/gz/",
        &meta("text/html", &[("content-encoding", "gzip")]),
        &gz,
    )
    .await;
    wait_encoded(s, 1).await;
    let (header, got) = get(s, "http://a/gz/", "gzip").await;
    assert_eq!(
        got, gz,
        "the origin's own gzip bytes are served as they came"
    );
    assert_eq!(header.headers["etag"], "\"rev-7\"");
    let (header, got) = get(s, "http://a/gz/", "").await;
    check_representation(&header, &got, Coding::Identity, Coding::Gzip, &body);
    let (header, got) = get(s, "http://a/gz/", "br, gzip").await;
    check_representation(&header, &got, Coding::Brotli, Coding::Gzip, &body);
}

#[tokio::test]
async fn every_coding_survives_a_restart_and_purge_removes_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let body = page();
    {
        let s = storage(Some(dir.path()));
        put(s, "http://a/sale/", &meta("text/html", &[]), &body).await;
        wait_encoded(s, 1).await;
        s.flush();
    }
    let s = storage(Some(dir.path()));
    for (ae, coding) in [
        ("br", Coding::Brotli),
        ("gzip", Coding::Gzip),
        ("", Coding::Identity),
    ] {
        let (header, got) = get(s, "http://a/sale/", ae).await;
        check_representation(&header, &got, coding, Coding::Identity, &body);
    }
    assert_eq!(
        s.stats.encode_queued.load(Ordering::Relaxed),
        0,
        "nothing compressed again after the restart"
    );
    assert_eq!(s.purge_tag("post-7"), 1);
    s.flush();
    let span = Span::inactive().handle();
    let mut key = CacheKey::new("http://a/sale/", "");
    key.extensions
        .insert(Accepted::parse(std::iter::once(&b"br"[..])));
    assert!(s.lookup(&key, &span).await.unwrap().is_none());
    let files: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|d| std::fs::read_dir(d.ok()?.path()).ok())
        .map(|d| d.count())
        .sum();
    assert_eq!(files, 0, "the purge deleted the file holding every coding");
}

#[tokio::test]
async fn a_purge_while_encoding_is_not_undone_by_the_encoder() {
    let s = storage(None);
    let body = page();
    for i in 0..20 {
        put(
            s,
            &format!("http://a/p{i}/"),
            &meta("text/html", &[]),
            &body,
        )
        .await;
        s.purge_url(&format!("http://a/p{i}/"));
    }
    // Every queued encoding ends: attached, failed, or discarded because its object is gone.
    let settled = || {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        n(&s.stats.encoded_objects) + n(&s.stats.encode_failed) + n(&s.stats.encode_discarded)
            == n(&s.stats.encode_queued)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !settled() {
        assert!(
            Instant::now() < deadline,
            "encodings did not finish within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.stats.encode_queued.load(Ordering::Relaxed), 20);
    assert_eq!(s.memory_objects(), 0, "purged objects stay purged");
}
