//! The chain as the edge runs it: order, verdicts, counters, trail.

use super::*;
use crate::testing::{Req, client};
use peakguard_config::Profile;

fn shared() -> Shared {
    Shared {
        maintenance_policy: MaintenancePolicy::new(
            vec!["127.0.0.1/32".parse().expect("cidr")],
            "pg_bypass=s3cret",
        ),
        default_retry_after: 600,
        room_templates: Default::default(),
        waf: Default::default(),
    }
}

fn site(redirect: bool) -> SiteConfig {
    let mut s = SiteConfig::quick("http://127.0.0.1:1", Profile::Wordpress);
    s.name = "shop".into();
    s.https_redirect = redirect;
    s
}

#[test]
fn body_size_redirect_and_maintenance_come_first_and_admission_last() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let chain = shield.chain_for(&site(true), &shared()).expect("chain");
    assert_eq!(
        chain.names(),
        [
            "body-size",
            "https-redirect",
            "maintenance",
            "login",
            "scanners",
            "admission",
            "issued-cookies"
        ]
    );
    let http_site = SiteConfig::quick("http://127.0.0.1:1", Profile::Http);
    assert_eq!(
        shield
            .chain_for(&http_site, &shared())
            .expect("chain")
            .names(),
        ["body-size", "maintenance", "issued-cookies"],
        "the http profile has no origin admission and no login protection by default"
    );
}

#[tokio::test]
async fn the_redirect_answers_plain_http_only() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let chain = shield.chain_for(&site(true), &shared()).expect("chain");
    let mut trail = Trail::default();
    let req = Req::get("/shop/?a=1");
    let Decision::Respond { guard, response } = chain
        .run(Phase::Request, &req.facts(), None, &mut trail)
        .await
    else {
        panic!("plain http is redirected");
    };
    assert_eq!(guard, "https-redirect");
    assert_eq!(response.status, 301);
    assert!(
        response
            .headers
            .contains(&("location", "https://shop.test/shop/?a=1".into()))
    );
    assert_eq!(trail.as_str(), Some("https-redirect: plain http"));

    let mut tls = Req::get("/");
    tls.tls = true;
    let mut trail = Trail::default();
    assert!(matches!(
        chain
            .run(Phase::Request, &tls.facts(), None, &mut trail)
            .await,
        Decision::Pass
    ));
    assert_eq!(trail.as_str(), None, "nothing acted");
    let mut proxied = Req::get("/");
    proxied.client = client("203.0.113.5", "https");
    assert!(matches!(
        chain
            .run(
                Phase::Request,
                &proxied.facts(),
                None,
                &mut Trail::default()
            )
            .await,
        Decision::Pass
    ));
    let counts = shield.registry.counters("https-redirect");
    assert_eq!((counts.get("respond"), counts.get("pass")), (1, 2));
}

#[tokio::test]
async fn maintenance_answers_503_except_the_allowed_and_the_cookie() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let chain = shield.chain_for(&site(false), &shared()).expect("chain");
    let visitor = Req::get("/");
    assert!(matches!(
        chain
            .run(
                Phase::Request,
                &visitor.facts(),
                None,
                &mut Trail::default()
            )
            .await,
        Decision::Pass
    ));
    shield.maintenance.write().on = true;
    let mut trail = Trail::default();
    match chain
        .run(Phase::Request, &visitor.facts(), None, &mut trail)
        .await
    {
        Decision::Respond { guard, response } => {
            assert_eq!(guard, "maintenance");
            assert_eq!(response.status, 503);
            assert!(response.close);
            assert!(response.headers.contains(&("retry-after", "600".into())));
            assert!(String::from_utf8_lossy(&response.body).contains("maintenance"));
        }
        _ => panic!("maintenance answers"),
    }
    assert_eq!(trail.as_str(), Some("maintenance: on"));
    let mut admin = Req::get("/");
    admin.client = client("127.0.0.1", "http");
    assert!(matches!(
        chain
            .run(Phase::Request, &admin.facts(), None, &mut Trail::default())
            .await,
        Decision::Pass
    ));
    let with_cookie = Req::get("/").header("cookie", "a=b; pg_bypass=s3cret");
    assert!(matches!(
        chain
            .run(
                Phase::Request,
                &with_cookie.facts(),
                None,
                &mut Trail::default()
            )
            .await,
        Decision::Pass
    ));
}

/// The chain's turn, seen as admission's ticket (the turn is held while this lives).
struct Held(Box<dyn crate::guard::Turn>);

impl std::ops::Deref for Held {
    type Target = Ticket;
    fn deref(&self) -> &Ticket {
        self.0
            .as_any()
            .downcast_ref::<Ticket>()
            .expect("admission's ticket")
    }
}

async fn lane_of(chain: &GuardChain, req: &Req, trail: &mut Trail) -> Held {
    match chain.run(Phase::Origin, &req.facts(), None, trail).await {
        Decision::Wait { ticket, .. } => Held(ticket),
        _ => panic!("admission always hands out a ticket"),
    }
}

/// Sets `key = value` in the site's `[site.shield.TABLE]`, as the file would.
fn set(config: &mut SiteConfig, table: &str, key: &str, value: impl Into<toml::Value>) {
    let entry = config
        .shield
        .guards
        .entry(table.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(t) = entry.as_table_mut() {
        t.insert(key.to_string(), value.into());
    }
}

#[tokio::test]
async fn admission_classifies_lanes_and_counts_only_real_waits() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let mut config = site(false);
    set(&mut config, "admission", "limit", 1);
    set(&mut config, "admission", "adaptive", false);
    let chain = shield.chain_for(&config, &shared()).expect("chain");
    let mut trail = Trail::default();
    let first = lane_of(&chain, &Req::get("/"), &mut trail).await;
    assert!(first.immediate());
    assert_eq!(trail.as_str(), None, "a slot at once is not an action");
    // The origin issues a session through the edge (the response phase remembers it).
    let issued = Req::get("/?add-to-cart=12");
    let mut set_cookie = http::HeaderMap::new();
    set_cookie.append(
        http::header::SET_COOKIE,
        http::HeaderValue::from_static("woocommerce_items_in_cart=1; path=/"),
    );
    set_cookie.append(
        http::header::SET_COOKIE,
        http::HeaderValue::from_static("wp_woocommerce_session_pg=7f3a9c0e5b21d84f6a; path=/"),
    );
    let resp = ResponseFacts {
        status: 200,
        headers: &set_cookie,
    };
    assert!(matches!(
        chain
            .run(
                Phase::Response,
                &issued.facts(),
                Some(&resp),
                &mut Trail::default()
            )
            .await,
        Decision::Pass
    ));
    let real = "wp_woocommerce_session_pg=7f3a9c0e5b21d84f6a";
    let forged = "wordpress_logged_in_abc=forged";
    let unknown = " (a session cookie the origin did not issue)";
    let cases = [
        (Req::get("/wc-api/stripe/"), Lane::Checkout, ""),
        (Req::get("/?wc-api=WC_Gateway_Paypal"), Lane::Checkout, ""),
        (
            Req::get("/checkout/").header("cookie", real),
            Lane::Checkout,
            "",
        ),
        (
            Req::get("/?wc-ajax=checkout").header("cookie", real),
            Lane::Checkout,
            "",
        ),
        (Req::get("/cart/").header("cookie", real), Lane::Session, ""),
        (
            Req::get("/checkout/").header("cookie", forged),
            Lane::Bot,
            unknown,
        ),
        (Req::get("/").header("cookie", forged), Lane::Bot, unknown),
        (
            Req::get("/").header("cookie", &format!("{forged}; {real}")),
            Lane::Session,
            "",
        ),
        (Req::get("/checkout/"), Lane::Anonymous, ""),
        (Req::get("/?add-to-cart=12"), Lane::Anonymous, ""),
        (
            Req::get("/").header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1)"),
            Lane::Bot,
            "",
        ),
        (Req::get("/?s=shoes"), Lane::Anonymous, ""),
    ];
    for (req, want, why) in &cases {
        let mut trail = Trail::default();
        let ticket = lane_of(&chain, req, &mut trail).await;
        assert_eq!(ticket.lane(), *want, "{} {:?}", req.path, req.headers);
        assert!(!ticket.immediate());
        assert_eq!(
            trail.as_str(),
            Some(format!("admission: queued in lane {}{why}", want.label()).as_str())
        );
    }
    let counts = shield.registry.counters("admission");
    assert_eq!(
        (counts.get("pass"), counts.get("wait")),
        // The slot at once, and the response phase it was asked in (a pass).
        (2, cases.len() as u64)
    );
    let mut metrics = String::new();
    shield.render_metrics(&mut metrics).await;
    assert!(
        metrics.contains("peakguard_guard_verdicts_total{guard=\"admission\",verdict=\"wait\"} 12")
    );
    assert!(metrics.contains("peakguard_origin_limit{site=\"shop\"} 1"));
}

#[test]
fn a_reload_keeps_the_sites_admission_and_applies_the_new_limit() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let mut config = site(false);
    set(&mut config, "admission", "limit", 2);
    set(&mut config, "admission", "adaptive", false);
    let _ = shield.chain_for(&config, &shared()).expect("chain");
    set(&mut config, "admission", "limit", 5);
    let _ = shield.chain_for(&config, &shared()).expect("chain");
    let snaps = shield.admission_snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].limit, 5);
    // Adaptive (the default), it starts from the configured limit within its bounds.
    set(&mut config, "admission", "adaptive", true);
    set(&mut config, "admission", "limit", 8);
    let _ = shield.chain_for(&config, &shared()).expect("chain");
    assert_eq!(shield.admission_snapshots()[0].limit, 8);
    set(&mut config, "admission", "max_limit", 6);
    let _ = shield.chain_for(&config, &shared()).expect("chain");
    assert_eq!(shield.admission_snapshots()[0].limit, 6, "new bounds apply");
}

#[tokio::test]
async fn the_deny_list_comes_first_and_refuses_addresses_and_agents() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let mut config = site(true);
    config.shield.guards.insert(
        "deny".into(),
        toml::from_str("ips = [\"198.51.100.0/24\"]\nagents = [\"SQLMap\"]").expect("toml"),
    );
    config.shield.guards.insert(
        "limits".into(),
        toml::from_str("enabled = true").expect("toml"),
    );
    let chain = shield.chain_for(&config, &shared()).expect("chain");
    assert_eq!(
        chain.names(),
        [
            "deny",
            "body-size",
            "https-redirect",
            "maintenance",
            "limits",
            "login",
            "scanners",
            "admission",
            "issued-cookies"
        ]
    );
    let mut trail = Trail::default();
    let from_net = Req::get("/").sent_by("198.51.100.77");
    match chain
        .run(Phase::Request, &from_net.facts(), None, &mut trail)
        .await
    {
        Decision::Respond { guard, response } => {
            assert_eq!(
                (guard, response.status, response.close),
                ("deny", 403, true)
            );
        }
        _ => panic!("denied"),
    }
    assert_eq!(trail.as_str(), Some("deny: address in 198.51.100.0/24"));
    let tool = Req::get("/").header("user-agent", "sqlmap/1.7");
    let mut trail = Trail::default();
    assert!(matches!(
        chain
            .run(Phase::Request, &tool.facts(), None, &mut trail)
            .await,
        Decision::Respond { guard: "deny", .. }
    ));
    assert_eq!(trail.as_str(), Some("deny: user-agent matches \"sqlmap\""));
}

#[tokio::test]
async fn a_visitor_the_waiting_room_let_in_waits_in_the_session_lane() {
    let shield = Shield::new(MaintenanceState::default(), 10_000);
    let mut config = site(false);
    set(&mut config, "waiting_room", "enabled", true);
    set(&mut config, "waiting_room", "active_users", 1000);
    let chain = shield.chain_for(&config, &shared()).expect("chain");
    // With room to spare, a newcomer is let in: the pass goes with the response and this
    // very request waits in the session lane.
    let mut trail = Trail::default();
    let first = lane_of(&chain, &Req::get("/?add-to-cart=12"), &mut trail).await;
    assert_eq!(first.lane(), Lane::Session);
    assert!(
        trail.headers.iter().any(|(_, v)| v.starts_with("pg_pass=")),
        "{:?}",
        trail.headers
    );
    // The room full (everyone queued): only a real pass goes on, in the session lane.
    let room = shield.slots.get::<room::Room>("shop").expect("the room");
    room.set_mode(room::RoomMode::QueueAll).await.expect("mode");
    let expires = (room::unix_now() + 600).to_string();
    let pass = shield
        .room_keys
        .read()
        .seal("shop|pass", &[expires.as_str(), "0123456789abcdef"]);
    let forged = room::RoomKeys {
        current: b"another-key-0123456789abcdefghij".to_vec(),
        previous: None,
    }
    .seal("shop|pass", &[expires.as_str(), "0123456789abcdef"]);
    let with = |cookie: String| Req::get("/?add-to-cart=12").header("cookie", &cookie);
    for req in [
        Req::get("/?add-to-cart=12"),
        with(format!("pg_pass={forged}")),
    ] {
        let decision = chain
            .run(Phase::Origin, &req.facts(), None, &mut Trail::default())
            .await;
        assert!(
            matches!(
                decision,
                Decision::Respond {
                    guard: "waiting-room",
                    ..
                }
            ),
            "{:?}",
            req.headers
        );
    }
    for req in [
        with(format!("pg_pass={pass}")),
        with(format!(
            "pg_pass={pass}; wordpress_logged_in_x=not-issued-here"
        )),
    ] {
        let ticket = lane_of(&chain, &req, &mut Trail::default()).await;
        assert_eq!(ticket.lane(), Lane::Session, "{:?}", req.headers);
    }
}
