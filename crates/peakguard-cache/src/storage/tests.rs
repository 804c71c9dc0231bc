use super::*;
use pingora_cache::trace::Span;
use pingora_http::ResponseHeader;
use std::time::{Duration, SystemTime};

fn storage(disk: Option<&std::path::Path>) -> &'static TieredStorage {
    let s = unrecovered(disk, 1 << 24);
    s.start_recovery().expect("recovery");
    wait_recovered(s);
    s
}

/// The storage as a restart opens it, before the disk objects' URLs and tags are read.
fn unrecovered(disk: Option<&std::path::Path>, disk_bytes: u64) -> &'static TieredStorage {
    let settings = StorageSettings {
        memory_bytes: 1 << 20,
        disk: disk.map(|d| (d.to_path_buf(), disk_bytes)),
        max_object_bytes: 1 << 20,
        tag_headers: vec!["cache-tag".into()],
        compression: crate::encoding::CompressionPolicy::default(),
        encoder_threads: 1,
    };
    Box::leak(Box::new(
        TieredStorage::open(settings).expect("open storage"),
    ))
}

fn wait_recovered(s: &TieredStorage) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !s.recovered() {
        assert!(std::time::Instant::now() < deadline, "recovery never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Object files under the disk tier's directory.
fn files_on_disk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|shard| std::fs::read_dir(shard.path()).expect("shard").count())
        .sum()
}

fn meta(tags: &str) -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).unwrap();
    if !tags.is_empty() {
        h.insert_header("cache-tag", tags).unwrap();
    }
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, h)
}

async fn put(s: &'static TieredStorage, url: &str, tags: &str, body: &[u8]) {
    let span = Span::inactive().handle();
    let key = CacheKey::new(url, "");
    let mut miss = s.get_miss_handler(&key, &meta(tags), &span).await.unwrap();
    miss.write_body(Bytes::copy_from_slice(body), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
}

async fn get(s: &'static TieredStorage, url: &str) -> Option<Vec<u8>> {
    let span = Span::inactive().handle();
    let (_, mut hit) = s.lookup(&CacheKey::new(url, ""), &span).await.unwrap()?;
    let mut out = Vec::new();
    while let Some(b) = hit.read_body().await.unwrap() {
        out.extend_from_slice(&b);
    }
    Some(out)
}

#[tokio::test]
async fn write_then_read_and_purges() {
    let s = storage(None);
    put(s, "http://a/p1", "post-1 home", b"one").await;
    put(s, "http://a/p2", "post-2", b"two").await;
    put(s, "http://a/blog/x", "home", b"three").await;
    assert_eq!(get(s, "http://a/p1").await.as_deref(), Some(&b"one"[..]));
    assert_eq!(s.purge_tag("home"), 2);
    assert!(get(s, "http://a/p1").await.is_none());
    assert!(get(s, "http://a/p2").await.is_some());
    assert_eq!(s.purge_url("http://a/p2"), 1);
    assert!(get(s, "http://a/p2").await.is_none());
    put(s, "http://a/shop/1", "", b"s1").await;
    put(s, "http://a/shop/2", "", b"s2").await;
    assert_eq!(s.purge_prefix("http://a/shop/"), 2);
    put(s, "http://a/z", "", b"z").await;
    assert_eq!(s.purge_all(), 1);
    assert_eq!(s.memory_objects(), 0);
}

#[tokio::test]
async fn a_reader_follows_a_write_in_progress() {
    let s = storage(None);
    let span = Span::inactive().handle();
    let key = CacheKey::new("http://a/slow", "");
    let mut miss = s.get_miss_handler(&key, &meta(""), &span).await.unwrap();
    miss.write_body(Bytes::from_static(b"first "), false)
        .await
        .unwrap();
    let (_, mut hit) = s.lookup(&key, &span).await.unwrap().expect("partial hit");
    assert_eq!(&hit.read_body().await.unwrap().unwrap()[..], b"first ");
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(b) = hit.read_body().await.unwrap() {
            rest.extend_from_slice(&b);
        }
        rest
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    miss.write_body(Bytes::from_static(b"second"), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    assert_eq!(reader.await.unwrap(), b"second");
    assert_eq!(
        get(s, "http://a/slow").await.as_deref(),
        Some(&b"first second"[..])
    );
}

#[tokio::test]
async fn an_abandoned_write_fails_its_readers_and_stores_nothing() {
    let s = storage(None);
    let span = Span::inactive().handle();
    let key = CacheKey::new("http://a/abandoned", "");
    let mut miss = s.get_miss_handler(&key, &meta(""), &span).await.unwrap();
    miss.write_body(Bytes::from_static(b"part"), false)
        .await
        .unwrap();
    let (_, mut hit) = s.lookup(&key, &span).await.unwrap().expect("partial hit");
    drop(miss);
    assert!(hit.read_body().await.unwrap().is_some());
    assert!(hit.read_body().await.is_err());
    assert!(get(s, "http://a/abandoned").await.is_none());
}

#[tokio::test]
async fn disk_tier_survives_a_restart_with_its_purge_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(Some(dir.path()));
    put(s, "http://a/kept", "t1", b"kept body").await;
    put(s, "http://a/other", "t2", b"other").await;
    s.flush();
    let again = storage(Some(dir.path()));
    assert_eq!(again.disk_objects(), 2);
    assert_eq!(
        get(again, "http://a/kept").await.as_deref(),
        Some(&b"kept body"[..])
    );
    assert_eq!(again.stats.disk_hits.load(Ordering::Relaxed), 1);
    assert_eq!(again.purge_tag("t2"), 1);
    again.flush();
    let third = storage(Some(dir.path()));
    assert_eq!(third.disk_objects(), 1);
}

#[tokio::test]
async fn an_oversize_object_is_not_stored_but_its_readers_get_every_byte() {
    let s = storage(None);
    let span = Span::inactive().handle();
    let key = CacheKey::new("http://a/big", "");
    let mut miss = s.get_miss_handler(&key, &meta(""), &span).await.unwrap();
    miss.write_body(Bytes::from(vec![0u8; 1 << 19]), false)
        .await
        .unwrap();
    let (_, mut follower) = s.lookup(&key, &span).await.unwrap().expect("partial hit");
    assert!(follower.read_body().await.unwrap().is_some());
    let past_limit = miss
        .write_body(Bytes::from(vec![0u8; 1 << 20]), false)
        .await;
    assert!(past_limit.is_ok(), "writing past the limit is not an error");
    assert!(
        s.lookup(&key, &span).await.unwrap().is_none(),
        "nobody new joins an oversize write"
    );
    let next = follower.read_body().await.unwrap().map(|b| b.len());
    assert_eq!(next, Some(1 << 20), "a follower still gets every byte");
    miss.write_body(Bytes::from_static(b"tail"), true)
        .await
        .unwrap();
    assert_eq!(
        follower.read_body().await.unwrap().as_deref(),
        Some(&b"tail"[..])
    );
    miss.finish().await.unwrap();
    assert!(follower.read_body().await.unwrap().is_none());
    assert!(get(s, "http://a/big").await.is_none(), "not stored");
}

#[tokio::test]
async fn a_pass_through_reader_that_lags_too_far_is_dropped() {
    let s = storage(None);
    let span = Span::inactive().handle();
    let key = CacheKey::new("http://a/slow-reader", "");
    let mut miss = s.get_miss_handler(&key, &meta(""), &span).await.unwrap();
    let (_, mut slow) = s.lookup(&key, &span).await.unwrap().expect("partial hit");
    // 1 MiB limit, 8 MiB allowed lag: write 12 MiB that the slow reader never reads.
    for _ in 0..12 {
        miss.write_body(Bytes::from(vec![0u8; 1 << 20]), false)
            .await
            .unwrap();
    }
    assert!(
        slow.read_body().await.is_err(),
        "memory is not held for a reader that far behind"
    );
}

#[tokio::test]
async fn the_disk_tier_stays_within_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StorageSettings {
        memory_bytes: 1 << 20,
        disk: Some((dir.path().to_path_buf(), 64 << 10)),
        max_object_bytes: 1 << 20,
        tag_headers: vec![],
        compression: crate::encoding::CompressionPolicy::default(),
        encoder_threads: 1,
    };
    let s: &'static TieredStorage = Box::leak(Box::new(TieredStorage::open(settings).unwrap()));
    for i in 0..100 {
        put(s, &format!("http://a/{i}"), "", &[7u8; 4096]).await;
    }
    s.flush();
    assert!(
        s.disk_bytes() <= 64 << 10,
        "{} bytes on disk",
        s.disk_bytes()
    );
    assert!(s.disk_evictions() > 0);
    let files: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|d| std::fs::read_dir(d.ok()?.path()).ok())
        .map(|d| d.count())
        .sum();
    assert_eq!(
        files,
        s.disk_objects(),
        "evicted objects are deleted from disk"
    );
}

/// Fills in progress count in the memory budget (stored objects make room), Content-Length
/// or chunked alike, and may hold at most half of it: a fill past that is passed on, not
/// stored.
#[tokio::test]
async fn fills_in_progress_count_in_the_memory_budget() {
    let s = storage(None);
    for i in 0..6 {
        put(s, &format!("http://a/stored{i}"), "", &vec![b's'; 150_000]).await;
    }
    let stored_before = s.memory_bytes();
    assert!(stored_before > 800_000, "{stored_before}");
    let span = Span::inactive().handle();
    let key = CacheKey::new("http://a/fill", "");
    let mut fill = s.get_miss_handler(&key, &meta(""), &span).await.unwrap();
    for _ in 0..4 {
        fill.write_body(Bytes::from(vec![b'f'; 100_000]), false)
            .await
            .unwrap();
    }
    assert_eq!(s.filling_bytes(), 400_000);
    assert!(
        s.memory_bytes() + s.filling_bytes() <= 1 << 20,
        "stored {} + filling {} within the budget",
        s.memory_bytes(),
        s.filling_bytes()
    );
    // A second fill would take fills past half the budget: it is not stored.
    let key2 = CacheKey::new("http://a/fill2", "");
    let mut second = s.get_miss_handler(&key2, &meta(""), &span).await.unwrap();
    second
        .write_body(Bytes::from(vec![b'g'; 200_000]), true)
        .await
        .unwrap();
    second.finish().await.unwrap();
    assert_eq!(s.stats.fills_not_stored.load(Ordering::Relaxed), 1);
    assert!(get(s, "http://a/fill2").await.is_none());
    fill.write_body(Bytes::new(), true).await.unwrap();
    fill.finish().await.unwrap();
    assert_eq!(s.filling_bytes(), 0, "a finished fill leaves the count");
    assert_eq!(
        get(s, "http://a/fill").await.map(|b| b.len()),
        Some(400_000)
    );
}

/// A restart serves what is on disk at once; a purge that arrives before the recovery read
/// an object still removes it (at its first load, or when the recovery reads it).
#[tokio::test]
async fn a_purge_during_recovery_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(Some(dir.path()));
    put(s, "http://a/kept", "t1", b"kept body").await;
    put(s, "http://a/other", "t2", b"other").await;
    put(s, "http://a/third", "t2", b"third").await;
    s.flush();
    let again = unrecovered(Some(dir.path()), 1 << 24);
    assert_eq!(again.disk_objects(), 3, "indexed from the listing alone");
    assert_eq!(again.purge_tag("t2"), 0, "not read yet: nothing found now");
    assert!(
        get(again, "http://a/other").await.is_none(),
        "a purged object is dropped when it is first loaded"
    );
    assert_eq!(
        get(again, "http://a/kept").await.as_deref(),
        Some(&b"kept body"[..]),
        "served before the recovery ran"
    );
    again.start_recovery().unwrap();
    wait_recovered(again);
    assert!(
        get(again, "http://a/third").await.is_none(),
        "dropped by the recovery"
    );
    assert_eq!(again.disk_objects(), 1);
    assert_eq!(
        again.purge_tag("t1"),
        1,
        "the recovered object is in the purge index"
    );
    again.flush();
    assert_eq!(files_on_disk(dir.path()), 0, "no file left behind");
}

/// Every delete reaches the disk (none dropped when the write queue is busy), and a restart
/// with a smaller disk size evicts down to it.
#[tokio::test]
async fn deletes_are_never_dropped_and_a_restart_respects_a_smaller_disk_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(Some(dir.path()));
    for i in 0..300 {
        put(s, &format!("http://a/{i}"), "many", &[7u8; 4096]).await;
    }
    assert_eq!(s.purge_tag("many"), 300);
    for i in 0..40 {
        put(s, &format!("http://a/kept{i}"), "", &[8u8; 4096]).await;
    }
    s.flush();
    assert_eq!(
        files_on_disk(dir.path()),
        40,
        "purged files are gone, kept ones written"
    );
    assert_eq!(s.disk_objects(), 40);
    let small = unrecovered(Some(dir.path()), 20 * 4096);
    assert!(small.disk_bytes() <= 20 * 4096, "{}", small.disk_bytes());
    small.flush();
    assert_eq!(files_on_disk(dir.path()), small.disk_objects());
    assert!(small.disk_objects() < 40);
}
