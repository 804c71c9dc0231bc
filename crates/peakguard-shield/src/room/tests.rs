use super::guard::{PASS_COOKIE, TICKET_COOKIE};
use super::*;
use crate::issued::SessionCookies;
use crate::store::MemoryStore;
use crate::testing::Req;
use crate::{Guard, ResponseFacts, Verdict};
use peakguard_config::Seconds;

const DEADLINE: Duration = Duration::from_secs(20);

struct Fixture {
    store: Arc<MemoryStore>,
    guard: RoomGuard,
}

fn keys() -> Arc<parking_lot::RwLock<RoomKeys>> {
    Arc::new(parking_lot::RwLock::new(RoomKeys {
        current: b"room-test-key-0123456789abcdef!!".to_vec(),
        previous: None,
    }))
}

fn config(active_users: u64, per_minute: u64) -> WaitingRoomConfig {
    WaitingRoomConfig {
        enabled: true,
        active_users,
        new_users_per_minute: per_minute,
        session: Seconds::secs(600),
        refresh: Seconds::secs(5),
        no_show: Seconds(Duration::from_millis(300)),
        ..WaitingRoomConfig::default()
    }
}

fn fixture_with(store: Arc<MemoryStore>, c: WaitingRoomConfig) -> Fixture {
    let room = Arc::new(Room::new("shop", &c, store.clone()));
    Fixture {
        guard: RoomGuard {
            room,
            keys: keys(),
            admission: None,
            queue_timeout: Duration::from_secs(20),
            sessions: SessionCookies::new(&["wordpress_logged_in_*".into()]),
            template: None,
        },
        store,
    }
}

fn fixture(c: WaitingRoomConfig) -> Fixture {
    fixture_with(Arc::new(MemoryStore::new(10_000)), c)
}

/// What a visitor got: let through (with the cookies set), or the page (status, body,
/// cookies set).
#[derive(Debug)]
enum Seen {
    Through(Vec<String>),
    Page(u16, String, Vec<String>),
}

impl Seen {
    fn cookie(&self, name: &str) -> Option<String> {
        let list = match self {
            Seen::Through(c) | Seen::Page(_, _, c) => c,
        };
        list.iter()
            .filter_map(|c| c.split(';').next())
            .filter_map(|c| c.split_once('='))
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(n, v)| format!("{n}={v}"))
    }

    fn position(&self) -> Option<u64> {
        match self {
            Seen::Page(_, body, _) => body
                .split("id=\"position\">")
                .nth(1)?
                .split('<')
                .next()?
                .parse()
                .ok(),
            Seen::Through(_) => None,
        }
    }
}

async fn visit(f: &Fixture, req: &Req) -> Seen {
    let mut v = f.guard.before_origin(&req.facts());
    if let Verdict::Ask(a) = v {
        v = a.await;
    }
    match v {
        Verdict::Pass => Seen::Through(vec![]),
        Verdict::Note { headers, .. } | Verdict::Wait { headers, .. } => {
            Seen::Through(headers.into_iter().map(|(_, v)| v).collect())
        }
        Verdict::Respond { response, .. } => Seen::Page(
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
            response
                .headers
                .into_iter()
                .filter(|(k, _)| *k == "set-cookie")
                .map(|(_, v)| v)
                .collect(),
        ),
        _ => panic!("unexpected verdict"),
    }
}

fn with_cookie(cookie: &str) -> Req {
    Req::get("/shop/").header("cookie", cookie)
}

#[tokio::test]
async fn newcomers_get_a_pass_until_the_room_is_full_then_a_place_kept_across_refreshes() {
    let f = fixture(config(2, 0));
    for _ in 0..2 {
        let seen = visit(&f, &Req::get("/shop/")).await;
        assert!(seen.cookie(PASS_COOKIE).is_some(), "{seen:?}");
    }
    let mut tickets = Vec::new();
    for want in 1..=3 {
        let seen = visit(&f, &Req::get("/shop/")).await;
        let Seen::Page(503, body, _) = &seen else {
            panic!("{seen:?}")
        };
        assert!(body.contains("You are in line"));
        assert_eq!(seen.position(), Some(want));
        tickets.push(seen.cookie(TICKET_COOKIE).expect("a ticket"));
    }
    // A refresh keeps the place, in the order of arrival.
    for (i, t) in tickets.iter().enumerate() {
        let seen = visit(&f, &with_cookie(t)).await;
        assert_eq!(seen.position(), Some(i as u64 + 1), "{seen:?}");
        assert_eq!(
            seen.cookie(TICKET_COOKIE),
            None,
            "no new ticket on a refresh"
        );
    }
    // The room stays full; a session the origin issued goes through all the same.
    let fourth = visit(&f, &Req::get("/")).await;
    assert_eq!(fourth.position(), Some(4), "the room is full");
    let store: Arc<dyn Store> = f.store.clone();
    crate::issued::remember(
        store.as_ref(),
        &SessionCookies::new(&["wordpress_logged_in_*".into()]),
        &["wordpress_logged_in_x=a-real-session-token-0123".to_string()],
    )
    .await
    .expect("remember");
    let buyer = visit(
        &f,
        &with_cookie("wordpress_logged_in_x=a-real-session-token-0123"),
    )
    .await;
    assert!(
        matches!(buyer, Seen::Through(ref c) if c.is_empty()),
        "{buyer:?}"
    );
    let forged = visit(
        &f,
        &with_cookie("wordpress_logged_in_x=forged-forged-forged-0000"),
    )
    .await;
    assert_eq!(
        forged.position(),
        Some(5),
        "a forged session waits like anyone"
    );
}

#[tokio::test]
async fn forged_tampered_and_expired_tickets_buy_nothing() {
    let f = fixture(config(1, 0));
    visit(&f, &Req::get("/")).await; // fills the room
    let first = visit(&f, &Req::get("/")).await;
    let ticket = first.cookie(TICKET_COOKIE).expect("ticket");
    assert_eq!(first.position(), Some(1));
    visit(&f, &Req::get("/")).await; // position 2
    // Tampered: claims number 1 with another signature; made up; another site's key.
    let (name, value) = ticket.split_once('=').unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    let tampered = format!("{name}=q.0.{}.{}", parts[2], parts[3]);
    let made_up = format!(
        "{TICKET_COOKIE}=q.0.{}.00000000000000000000000000000000",
        unix_now()
    );
    for (bad, place) in [(tampered, 3), (made_up, 4)] {
        let seen = visit(&f, &with_cookie(&bad)).await;
        assert_eq!(seen.position(), Some(place), "treated as a newcomer: {bad}");
        assert!(seen.cookie(TICKET_COOKIE).is_some());
    }
    let fake_pass = format!("{PASS_COOKIE}=9999999999.abc.00000000000000000000000000000000");
    assert!(matches!(
        visit(&f, &with_cookie(&fake_pass)).await,
        Seen::Page(..)
    ));
    // Expired: a ticket older than its lifetime.
    let mut short = config(1, 0);
    short.ticket_lifetime = Seconds::secs(1);
    let g = fixture_with(f.store.clone(), short);
    let old = g
        .guard
        .keys
        .read()
        .seal("shop|ticket", &["q", "1", &(unix_now() - 5).to_string()]);
    let seen = visit(&g, &with_cookie(&format!("{TICKET_COOKIE}={old}"))).await;
    assert!(
        seen.cookie(TICKET_COOKIE).is_some(),
        "an expired ticket gets a new place"
    );
}

// On a paused clock: the pace and the no-show wait are whole seconds, passed at once.
#[tokio::test(start_paused = true)]
async fn the_line_moves_at_the_configured_pace_and_a_no_show_does_not_block_it() {
    // Room for one; queue-all so that everyone lines up.
    let f = fixture(config(1, 0));
    f.guard
        .room
        .set_mode(RoomMode::QueueAll)
        .await
        .expect("mode");
    let a = visit(&f, &Req::get("/"))
        .await
        .cookie(TICKET_COOKIE)
        .expect("a");
    let b = visit(&f, &Req::get("/"))
        .await
        .cookie(TICKET_COOKIE)
        .expect("b");
    // A's turn comes; A never comes back. After no_show, B is let in.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = visit(&f, &with_cookie(&b)).await;
        if let Seen::Through(cookies) = &seen {
            assert!(cookies.iter().any(|c| c.starts_with("pg_pass=")));
            assert!(
                cookies.iter().any(|c| c.starts_with("pg_ticket=;")),
                "the ticket is cleared"
            );
            break;
        }
        assert!(Instant::now() < deadline, "B never got in: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = f.guard.room.status().await.expect("status");
    assert_eq!(status.admitted, 2, "A (a no-show) and B");
    assert_eq!(status.waiting, 0);
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn while_the_origin_is_behind_newcomers_line_up_and_nobody_is_let_in() {
    use crate::admission::{Admission, Lane};
    let admission = Admission::new("shop", 1, 1000);
    // One request held at least 20 ms sets the measured service time.
    let first = admission
        .ticket(Lane::Anonymous, DEADLINE)
        .wait()
        .await
        .expect("slot");
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(first);
    let busy = admission
        .ticket(Lane::Anonymous, DEADLINE)
        .wait()
        .await
        .expect("slot");
    // 100 waiting × ≥ 20 ms each: an estimated wait of ≥ 2 s.
    let waiters: Vec<_> = (0..100)
        .map(|_| admission.ticket(Lane::Anonymous, DEADLINE))
        .collect();
    assert!(admission.estimated_wait() >= Duration::from_secs(2));

    let mut c = config(0, 0);
    c.max_origin_wait = Seconds::secs(1);
    let mut f = fixture(c);
    f.guard.admission = Some(admission.clone());
    let seen = visit(&f, &Req::get("/shop/")).await;
    assert!(matches!(seen, Seen::Page(503, _, _)), "{seen:?}");
    let ticket = seen.cookie(TICKET_COOKIE).expect("a place");
    // Ticks come and go (at most one per 200 ms); the line stays shut while the origin is
    // behind.
    let shut_until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < shut_until {
        let seen = visit(&f, &with_cookie(&ticket)).await;
        assert_eq!(seen.position(), Some(1), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.guard.room.status().await.expect("status").admitted, 0);
    // The origin catches up: the line moves.
    drop(waiters);
    drop(busy);
    assert_eq!(admission.estimated_wait(), Duration::ZERO);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = visit(&f, &with_cookie(&ticket)).await;
        if let Seen::Through(cookies) = &seen {
            assert!(cookies.iter().any(|c| c.starts_with("pg_pass=")));
            break;
        }
        assert!(Instant::now() < deadline, "never let in: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_waiting_page_is_marked_for_tools() {
    let f = fixture(config(0, 0));
    f.guard
        .room
        .set_mode(RoomMode::QueueAll)
        .await
        .expect("mode");
    let mut v = f.guard.before_origin(&Req::get("/shop/").facts());
    if let Verdict::Ask(a) = v {
        v = a.await;
    }
    let Verdict::Respond { response, .. } = v else {
        panic!("the page");
    };
    let marker = response
        .headers
        .iter()
        .find(|(k, _)| *k == super::guard::ROOM_HEADER)
        .map(|(_, v)| v.as_str());
    assert_eq!(marker, Some("position=1"));
}

#[tokio::test]
async fn before_an_opening_places_are_drawn_at_random_then_let_in_by_draw() {
    let f = fixture(config(0, 6000));
    let room = f.guard.room.clone();
    room.set_opening(Some(unix_now() + 3600))
        .await
        .expect("opening");
    let mut tickets = Vec::new();
    for _ in 0..10 {
        let seen = visit(&f, &Req::get("/")).await;
        let Seen::Page(503, body, _) = &seen else {
            panic!("{seen:?}")
        };
        assert!(body.contains("random draw"), "{body}");
        tickets.push(seen.cookie(TICKET_COOKIE).expect("pre-queue ticket"));
    }
    room.set_opening(Some(unix_now().saturating_sub(1)))
        .await
        .expect("open now");
    // Right after the opening (before the line moves), the places are the draw's order.
    let mut positions = Vec::new();
    for t in &tickets {
        let ticket_place = {
            let value = t.split_once('=').unwrap().1;
            let f2 = f.guard.keys.read();
            let fields = f2.open("shop|ticket", value, 3).expect("valid");
            Ticket::Pre(fields[1].parse().unwrap())
        };
        match room.place(ticket_place).await.expect("place") {
            Place::Waiting(p) => positions.push(p),
            other => panic!("{other:?}"),
        }
    }
    let in_arrival_order: Vec<u64> = (1..=10).collect();
    assert_ne!(
        positions, in_arrival_order,
        "arriving first is no advantage"
    );
    // A newcomer after the opening lines up behind the whole pre-queue.
    let late = visit(&f, &Req::get("/")).await;
    assert!(late.position().is_some_and(|p| p > 10), "{late:?}");
    // Then the line moves (100 a second here) and everyone gets in.
    let deadline = Instant::now() + DEADLINE;
    for t in &tickets {
        loop {
            if let Seen::Through(_) = visit(&f, &with_cookie(t)).await {
                break;
            }
            assert!(Instant::now() < deadline, "a pre-queue ticket never got in");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn json_for_apps_and_a_restart_keeps_the_line() {
    let f = fixture(config(1, 0));
    visit(&f, &Req::get("/")).await;
    let seen = visit(&f, &Req::get("/").header("accept", "application/json")).await;
    let Seen::Page(503, body, _) = &seen else {
        panic!("{seen:?}")
    };
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(v["in_queue"], true);
    assert_eq!(v["position"], 1);
    assert_eq!(v["refresh_seconds"], 5);
    let ticket = seen.cookie(TICKET_COOKIE).expect("ticket");
    visit(&f, &Req::get("/")).await; // position 2

    // Restart: the store is saved and restored; the keys are the same file.
    let saved = f.store.save();
    let store = Arc::new(MemoryStore::new(10_000));
    store.restore(saved);
    let after = fixture_with(store, config(1, 0));
    let seen = visit(&after, &with_cookie(&ticket)).await;
    assert_eq!(seen.position(), Some(1), "{seen:?}");
    let newcomer = visit(&after, &Req::get("/")).await;
    assert_eq!(newcomer.position(), Some(3));
}

#[test]
fn responses_of_let_in_visitors_are_not_refused_by_the_response_phase() {
    // The room asks nothing of responses.
    let f = fixture(config(1, 0));
    let h = http::HeaderMap::new();
    let r = ResponseFacts {
        status: 200,
        headers: &h,
    };
    assert!(matches!(
        f.guard.on_response(&Req::get("/").facts(), &r),
        Verdict::Pass
    ));
}
