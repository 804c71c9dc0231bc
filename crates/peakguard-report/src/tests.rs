use super::*;
use peakguard_stats::{Bucket, Event, Served};

const T0: i64 = 1_796_637_600; // 2026-12-07T10:00:00Z

fn minute(start: i64, requests: u64, page: &str) -> Record {
    let mut b = Bucket::default();
    for i in 0..requests {
        b.add(&Event {
            site: "shop".into(),
            served: Served::Hit,
            status: if i == 0 { 503 } else { 200 },
            bytes: 100,
            client_micros: 20_000,
            origin_micros: None,
            refused_by: (i == 0).then(|| "waiting-room".into()),
            page: Some(page.into()),
            referrer: None,
            host: "shop.test".into(),
            method_is_get: true,
            client: None,
            user_agent: None,
            order: None,
        });
    }
    b.sources.add("news / email / bf", 3, 20);
    b.conversions.add("news / email / bf", 1, 20);
    b.revenue.add("news / email / bf · EUR", 5990, 20);
    b.new_visitors = requests;
    Record {
        start,
        site: "shop".into(),
        bucket: b,
    }
}

fn entry(at: &str, who: &str, what: &str, detail: &str) -> Entry {
    Entry {
        seq: 1,
        at: at.into(),
        who: who.into(),
        what: what.into(),
        site: Some("shop".into()),
        detail: detail.into(),
        result: "ok".into(),
        prev: String::new(),
        hash: String::new(),
    }
}

fn report() -> Report {
    let records = vec![
        minute(T0, 60, "/sale/"),
        minute(T0 + 60, 600, "/<script>alert(1)</script>"),
        minute(T0 + 120, 120, "/sale/"),
    ];
    let journal = vec![
        entry(
            "2026-12-07T09:59:00.000Z",
            "ops",
            "POST /purge",
            "before the range",
        ),
        entry(
            "2026-12-07T10:01:30.000Z",
            "monitor",
            "alert firing",
            "SiteDown on probe home",
        ),
        entry(
            "2026-12-07T10:02:10.000Z",
            "ops",
            "POST /maintenance",
            "state=on <b>",
        ),
    ];
    let campaign = Campaign {
        name: "Black Friday".into(),
        from: T0,
        to: T0 + 180,
        campaign: "bf".into(),
        cost_cents: Some(1000),
        currency: "EUR".into(),
        ..Default::default()
    };
    build(&Input {
        title: "Campaign Black Friday".into(),
        site: Some("shop".into()),
        from: T0,
        to: T0 + 180,
        resolution: Resolution::Minute,
        records: &records,
        journal: &journal,
        campaign: Some(&campaign),
    })
}

#[test]
fn the_figures_come_from_the_records_and_the_journal_of_the_range() {
    let r = report();
    assert_eq!(r.total.requests, 780);
    assert_eq!(
        r.peak_requests_per_second, 10.0,
        "600 in the busiest minute"
    );
    assert_eq!(r.peak_at.as_deref(), Some("2026-12-07T10:01:00Z"));
    assert_eq!(r.server_errors, 3);
    assert_eq!(r.waiting_room_pages, 3);
    assert_eq!(r.series.len(), 3);
    let c = r.campaign.as_ref().expect("campaign");
    assert_eq!((c.visits, c.conversions), (9, 3));
    assert_eq!(c.cost_per_acquisition_cents, Some(333));
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(
        r.interventions.len(),
        2,
        "the one before the range is left out"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["campaign"]["revenue_cents"]["EUR"], 17970);
}

#[test]
fn the_page_is_self_contained_and_escapes_what_it_shows() {
    let page = html(&report());
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("Campaign Black Friday"));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "a page path is escaped"
    );
    assert!(
        page.contains("state=on &lt;b&gt;"),
        "a journal line is escaped"
    );
    for outside in [
        "<script", "src=", "href=", "url(", "@import", "http://", "https://",
    ] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    assert!(page.contains("179.70 EUR"), "revenue");
}
