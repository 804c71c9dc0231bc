//! Scoped admin tokens (`[[admin.tokens]]`): the WordPress plugin's purge-only token can
//! purge and nothing else; every call is logged with the token's name.

mod common;

use common::{Edge, TOKEN};

const PURGE_ONLY: &str = "wp-purge-only-0123456789abcdef";

fn call(edge: &Edge, method: &str, path: &str, token: &str) -> common::Response {
    common::admin_call(edge, method, path, token)
}

#[test]
fn a_purge_only_token_purges_and_cannot_switch_maintenance_or_read_metrics() {
    let (origin, _sim) = peakguard_sim::start();
    let edge = Edge::start(
        "admin-tokens",
        &format!(
            "[[admin.tokens]]\nname = \"wordpress\"\ntoken = \"{PURGE_ONLY}\"\npermissions = [\"purge\"]\n[[site]]\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n"
        ),
    );
    let purged = call(
        &edge,
        "POST",
        "/purge?url=http://shop.test/page/a",
        PURGE_ONLY,
    );
    assert_eq!(purged.status, 200, "{}", purged.text());
    let maintenance = call(&edge, "POST", "/maintenance?state=on", PURGE_ONLY);
    assert_eq!(maintenance.status, 403, "{}", maintenance.text());
    assert!(
        maintenance.text().contains("may not"),
        "{}",
        maintenance.text()
    );
    assert_eq!(call(&edge, "GET", "/metrics", PURGE_ONLY).status, 403);
    assert_eq!(call(&edge, "GET", "/maintenance", PURGE_ONLY).status, 403);
    // Maintenance is still off, as the admin token sees it.
    let state = call(&edge, "GET", "/maintenance", TOKEN);
    assert_eq!(state.status, 200);
    assert!(state.text().contains("\"on\":false"), "{}", state.text());
    assert_eq!(
        call(&edge, "GET", "/metrics", "wrong-token-wrong-token").status,
        401
    );
    // Each call is logged with the token's name.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(edge.dir.join("edge.log")).unwrap_or_default();
        if log.contains("admin POST /purge by \"wordpress\"")
            && log.contains("refused to token \"wordpress\"")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not logged:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_scoped_token_that_is_too_short_is_refused_with_its_key() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    std::fs::write(
        &config,
        "[[admin.tokens]]\nname = \"wordpress\"\ntoken = \"short\"\npermissions = [\"purge\"]\n",
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("config check");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("admin.tokens[0].token") && text.contains("16 characters"),
        "{text}"
    );
}

#[test]
fn get_token_says_who_calls_and_a_token_added_by_reload_works() {
    let (origin, _sim) = peakguard_sim::start();
    let site = format!("[[site]]\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n");
    let first = format!(
        "[[admin.tokens]]\nname = \"wordpress\"\ntoken = \"{PURGE_ONLY}\"\npermissions = [\"purge\"]\n{site}"
    );
    let edge = Edge::start("admin-token-reload", &first);
    let who = call(&edge, "GET", "/token", PURGE_ONLY);
    assert_eq!(who.status, 200, "any valid token may ask who it is");
    assert!(
        who.text().contains("\"name\":\"wordpress\"") && who.text().contains("[\"purge\"]"),
        "{}",
        who.text()
    );
    assert_eq!(
        call(&edge, "GET", "/token", "not-a-token-at-all-0").status,
        401
    );
    const ADDED: &str = "added-by-reload-0123456789";
    assert_eq!(call(&edge, "GET", "/token", ADDED).status, 401);
    let config = std::fs::read_to_string(&edge.config).expect("config");
    std::fs::write(
        &edge.config,
        config.replacen(
            "[[site]]",
            &format!(
                "[[admin.tokens]]\nname = \"bar\"\ntoken = \"{ADDED}\"\npermissions = [\"maintenance\", \"read\"]\n[[site]]"
            ),
            1,
        ),
    )
    .expect("write config");
    edge.signal("HUP");
    common::wait_until(
        "the reloaded token to be accepted",
        std::time::Duration::from_secs(20),
        || call(&edge, "GET", "/token", ADDED).status == 200,
    );
    assert_eq!(call(&edge, "GET", "/maintenance", ADDED).status, 200);
    assert_eq!(call(&edge, "POST", "/purge?all=1", ADDED).status, 403);
}
