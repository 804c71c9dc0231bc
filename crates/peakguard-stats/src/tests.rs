use super::*;
use std::time::Duration;

const DAY: i64 = 86_400;
/// 2026-12-07 10:00:00 UTC.
const T0: i64 = 1_796_637_600;

fn retention() -> Retention {
    Retention {
        minutes: Duration::from_secs(14 * DAY as u64),
        hours: Duration::from_secs(400 * DAY as u64),
    }
}

fn event(site: &str, status: u16, path: &str) -> Event {
    Event {
        site: site.into(),
        served: Served::Hit,
        status,
        bytes: 1000,
        client_micros: 3_000,
        origin_micros: None,
        refused_by: None,
        page: Some(path.into()),
        referrer: Some("https://www.google.com/".into()),
        host: "shop.example".into(),
        method_is_get: true,
        client: Some("198.51.100.7".parse().unwrap()),
        user_agent: Some("Mozilla/5.0".into()),
        order: None,
    }
}

/// The store in `stats/` of a test's directory (which others may read: not the store's).
fn store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("stats"), retention()).unwrap()
}

#[test]
fn minutes_are_written_when_finished_and_add_up_to_their_hour() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Aggregator::resume(store(dir.path()), T0).unwrap();
    for m in 0..3 {
        for _ in 0..=m {
            a.add(T0 + m * 60 + 5, event("shop", 200, "/"));
        }
    }
    a.add(T0 + 3 * 60, event("blog", 503, "/post/"));
    // Minutes 0..3 are on disk; minute 3 is being counted.
    let on_disk = a
        .store()
        .read(Resolution::Minute, T0, T0 + 3600, None)
        .unwrap();
    assert_eq!(
        on_disk
            .iter()
            .map(|r| (r.start - T0, r.bucket.total()))
            .collect::<Vec<_>>(),
        vec![(0, 1), (60, 2), (120, 3)]
    );
    let live = a.range(Resolution::Minute, T0, T0 + 3600, None).unwrap();
    assert_eq!(live.len(), 4);
    assert_eq!(live[3].site, "blog");
    assert_eq!(live[3].bucket.class(StatusClass::ServerError), 1);
    // The hour being counted: every minute so far, of each site.
    let hour = a
        .range(Resolution::Hour, T0, T0 + 3600, Some("shop"))
        .unwrap();
    assert_eq!(hour.len(), 1);
    assert_eq!(hour[0].bucket.total(), 6);
    assert_eq!(hour[0].bucket.pages.ranked(), vec![("/", 6)]);
    assert_eq!(hour[0].bucket.referrers.ranked(), vec![("google.com", 6)]);
    // The next hour: the finished one is on disk.
    a.roll(T0 + 3600 + 1);
    let hours = a
        .store()
        .read(Resolution::Hour, T0, T0 + 2 * 3600, None)
        .unwrap();
    let mut sums: Vec<(String, u64)> = hours
        .iter()
        .map(|r| (r.site.clone(), r.bucket.total()))
        .collect();
    sums.sort();
    assert_eq!(sums, vec![("blog".into(), 1), ("shop".into(), 6)]);
}

#[test]
fn a_restart_continues_the_saved_minute_and_a_late_one_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Aggregator::resume(store(dir.path()), T0).unwrap();
    a.add(T0 + 1, event("shop", 200, "/"));
    a.save().unwrap();
    drop(a);
    // Same minute: counting goes on where it was.
    let mut b = Aggregator::resume(store(dir.path()), T0 + 30).unwrap();
    b.add(T0 + 31, event("shop", 200, "/"));
    let now = b.range(Resolution::Minute, T0, T0 + 60, None).unwrap();
    assert_eq!(now[0].bucket.total(), 2);
    b.save().unwrap();
    drop(b);
    // Back two days later: the saved minute and hour are finished and written.
    let c = Aggregator::resume(store(dir.path()), T0 + 2 * DAY).unwrap();
    let minutes = c
        .store()
        .read(Resolution::Minute, T0, T0 + 60, None)
        .unwrap();
    assert_eq!(minutes.len(), 1);
    assert_eq!(minutes[0].bucket.total(), 2);
    let hours = c
        .store()
        .read(Resolution::Hour, T0, T0 + 3600, None)
        .unwrap();
    assert_eq!(hours[0].bucket.total(), 2);
}

#[test]
fn a_record_cut_by_a_crash_is_removed_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let rec = |start: i64| Record {
        start,
        site: "shop".into(),
        bucket: {
            let mut b = Bucket::default();
            b.add(&event("shop", 200, "/"));
            b
        },
    };
    s.append(Resolution::Minute, &[rec(T0), rec(T0 + 60)])
        .unwrap();
    let file = dir.path().join("stats/minutes/2026-12-07.pgs");
    let len = std::fs::metadata(&file).unwrap().len();
    // A crash in the middle of the second record.
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let reopened = store(dir.path());
    assert_eq!(
        reopened
            .read(Resolution::Minute, T0, T0 + DAY, None)
            .unwrap()
            .len(),
        1
    );
    reopened
        .append(Resolution::Minute, &[rec(T0 + 120)])
        .unwrap();
    let starts: Vec<i64> = reopened
        .read(Resolution::Minute, T0, T0 + DAY, None)
        .unwrap()
        .iter()
        .map(|r| r.start - T0)
        .collect();
    assert_eq!(starts, vec![0, 120]);
}

#[test]
fn old_days_and_months_are_removed_and_the_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let rec = |start: i64| Record {
        start,
        site: "shop".into(),
        bucket: Bucket::default(),
    };
    for day in [0, 13, 15, 20] {
        s.append(Resolution::Minute, &[rec(T0 - day * DAY)])
            .unwrap();
    }
    for month in [0, 12, 14] {
        s.append(Resolution::Hour, &[rec(T0 - month * 31 * DAY)])
            .unwrap();
    }
    assert_eq!(s.prune(T0).unwrap(), 3);
    let left = s.read(Resolution::Minute, 0, T0 + DAY, None).unwrap();
    assert_eq!(
        left.iter()
            .map(|r| (T0 - r.start) / DAY)
            .collect::<Vec<_>>(),
        vec![13, 0]
    );
    assert_eq!(
        s.read(Resolution::Hour, 0, T0 + DAY, None).unwrap().len(),
        2
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("stats")), 0o700);
    assert_eq!(
        mode(&dir.path().join("stats/minutes/2026-12-07.pgs")),
        0o600
    );
    // A directory others may enter is refused, with the fix.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Store::open(&open, retention()).err().unwrap().to_string();
    assert!(err.contains("chmod 700"), "{err}");
}

#[test]
fn the_thread_counts_what_is_recorded_and_saves_it_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        retention: retention(),
        save_every: Duration::from_secs(3600),
        threads: 4,
        goals: vec![aggregator::DEFAULT_GOAL.into()],
    };
    let stats = Stats::start(store(dir.path()), settings.clone()).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..250 {
                    stats.record(event("shop", 200, "/"));
                }
            });
        }
    });
    let now = now_unix();
    let counted = |s: &Stats| -> u64 {
        s.range(Resolution::Hour, now - 7200, now + 7200, Some("shop"))
            .unwrap()
            .iter()
            .map(|r| r.bucket.total())
            .sum()
    };
    assert_eq!(counted(&stats), 1000);
    assert_eq!(stats.dropped(), 0);
    stats.stop();
    drop(stats);
    let again = Stats::start(store(dir.path()), settings).unwrap();
    assert_eq!(
        counted(&again),
        1000,
        "saved when stopped, found after a restart"
    );
}

#[test]
fn during_an_upgrade_the_new_process_waits_for_the_old_ones_save_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Aggregator::resume(store(dir.path()), T0).unwrap();
    old.add(T0 + 1, event("shop", 200, "/"));
    old.save().unwrap();
    // The new process starts while the old one still serves (and holds the store).
    let mut new = Aggregator::resume(store(dir.path()), T0 + 2).unwrap();
    new.add(T0 + 3, event("shop", 200, "/"));
    old.add(T0 + 4, event("shop", 200, "/"));
    new.roll(T0 + 5);
    assert!(
        store(dir.path()).load_current().unwrap().unwrap().minutes[0]
            .1
            .total()
            == 1,
        "the waiting process writes nothing"
    );
    old.release().unwrap();
    drop(old);
    new.roll(T0 + 6);
    new.add(T0 + 7, event("shop", 200, "/"));
    new.roll(T0 + 61);
    let minutes = new
        .store()
        .read(Resolution::Minute, T0, T0 + 60, None)
        .unwrap();
    assert_eq!(minutes.len(), 1, "{minutes:?}");
    assert_eq!(minutes[0].bucket.total(), 4);
}

#[test]
fn visitors_sources_conversions_and_revenue_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Aggregator::resume(store(dir.path()), T0).unwrap();
    let visit = |a: &mut Aggregator, at: i64, ip: &str, path: &str, order: Option<&str>| {
        let mut e = event("shop", 200, path);
        e.referrer = None;
        e.client = Some(ip.parse().unwrap());
        e.order = order.map(Into::into);
        a.add(T0 + at, e);
    };
    // Two visitors from a newsletter, one from nowhere.
    visit(
        &mut a,
        1,
        "192.0.2.1",
        "/sale/?utm_source=news&utm_medium=email&utm_campaign=bf",
        None,
    );
    visit(
        &mut a,
        2,
        "192.0.2.2",
        "/sale/?utm_source=news&utm_medium=email&utm_campaign=bf",
        None,
    );
    visit(&mut a, 3, "192.0.2.3", "/", None);
    // The first buys (and reloads the confirmation); the third reaches the goal without an
    // order field (twice).
    let order = Some("id=1001; total=59.90; currency=EUR");
    visit(
        &mut a,
        70,
        "192.0.2.1",
        "/checkout/order-received/1001/?key=wc_order_x",
        order,
    );
    visit(
        &mut a,
        71,
        "192.0.2.1",
        "/checkout/order-received/1001/?key=wc_order_x",
        order,
    );
    visit(
        &mut a,
        72,
        "192.0.2.3",
        "/checkout/order-received/77/",
        None,
    );
    visit(
        &mut a,
        73,
        "192.0.2.3",
        "/checkout/order-received/77/",
        None,
    );
    let hour = a
        .range(Resolution::Hour, T0, T0 + 3600, Some("shop"))
        .unwrap();
    let b = &hour[0].bucket;
    assert_eq!(b.new_visitors, 3);
    assert_eq!(b.peak_minute_visitors, 3);
    assert_eq!(b.sources.ranked(), vec![("news / email / bf", 2)]);
    assert_eq!(
        b.conversions.ranked(),
        vec![("(direct)", 1), ("news / email / bf", 1)]
    );
    assert_eq!(b.revenue.ranked(), vec![("news / email / bf · EUR", 5990)]);
    let v = view::view(&hour, Resolution::Hour, T0, T0 + 3600, Some("shop"));
    assert_eq!(v.total.visitors, 3);
    assert_eq!(v.total.conversions, 2);
    // No address in what is stored.
    a.roll(T0 + 7200);
    a.save().unwrap();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == [192, 0, 2, 1])
                && !bytes.windows(9).any(|w| w == b"192.0.2.1"),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_file_names_each_key_once_and_a_restart_continues_its_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |start: i64, page: &str| {
        let mut b = Bucket::default();
        b.add(&event("shop", 200, page));
        b.pages.add(page, 1, bucket::MINUTE_KEYS);
        Record {
            start,
            site: "shop".into(),
            bucket: b,
        }
    };
    let long = format!("/a-rather-long-product-page-name-{}/", "x".repeat(100));
    let s = store(dir.path());
    s.append(Resolution::Minute, &[rec(T0, &long)]).unwrap();
    let file = dir.path().join("stats/minutes/2026-12-07.pgs");
    let first = std::fs::metadata(&file).unwrap().len();
    for m in 1..100 {
        s.append(Resolution::Minute, &[rec(T0 + m * 60, &long)])
            .unwrap();
    }
    let grown = std::fs::metadata(&file).unwrap().len() - first;
    assert!(
        grown < 99 * long.len() as u64,
        "the page's name is not written again each minute ({grown} bytes for 99 records)"
    );
    // Another process (a restart) goes on with the same file: old and new keys read back.
    drop(s);
    let s = store(dir.path());
    s.append(Resolution::Minute, &[rec(T0 + 6000, "/new/")])
        .unwrap();
    let read = s.read(Resolution::Minute, T0, T0 + DAY, None).unwrap();
    assert_eq!(read.len(), 101);
    assert_eq!(read[0].bucket.pages.ranked()[0].0, long);
    assert_eq!(read[100].bucket.pages.ranked()[0].0, "/new/");
}

#[test]
fn a_reader_in_another_process_counts_a_period_once_even_from_a_stale_save() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Aggregator::resume(store(dir.path()), T0).unwrap();
    a.add(T0 + 1, event("shop", 200, "/"));
    a.save().unwrap();
    // The minute ends and is written; the next save has not happened yet.
    a.roll(T0 + 61);
    let reader = store(dir.path());
    let minutes = reader
        .read_with_saved(Resolution::Minute, T0, T0 + 3600, Some("shop"))
        .unwrap();
    assert_eq!(minutes.iter().map(|r| r.bucket.total()).sum::<u64>(), 1);
    let hours = reader
        .read_with_saved(Resolution::Hour, T0, T0 + 3600, Some("shop"))
        .unwrap();
    assert_eq!(hours.iter().map(|r| r.bucket.total()).sum::<u64>(), 1);
    // Once saved again, the hour being counted has it (and the reader still counts it once).
    a.add(T0 + 62, event("shop", 200, "/"));
    a.save().unwrap();
    let minutes = reader
        .read_with_saved(Resolution::Minute, T0, T0 + 3600, Some("shop"))
        .unwrap();
    assert_eq!(minutes.iter().map(|r| r.bucket.total()).sum::<u64>(), 2);
    // And the live range of the aggregator itself agrees.
    let live = a
        .range(Resolution::Minute, T0, T0 + 3600, Some("shop"))
        .unwrap();
    assert_eq!(live.iter().map(|r| r.bucket.total()).sum::<u64>(), 2);
}
