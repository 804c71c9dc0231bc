//! The journal through the running edge: each change made through the admin API is appended
//! with the token's name; `peakguard journal` lists it; an edited line fails `--verify`,
//! named.

mod common;

use common::{Edge, TOKEN};
use std::process::Command;

const PURGE_ONLY: &str = "wp-purge-only-0123456789abcdef";

fn call(edge: &Edge, method: &str, path: &str, token: &str) -> u16 {
    common::admin_call(edge, method, path, token).status
}

fn journal(edge: &Edge, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .arg("journal")
        .arg("--config")
        .arg(&edge.config)
        .args(args)
        .output()
        .expect("run peakguard journal")
}

#[test]
fn admin_changes_are_journaled_with_their_token_and_an_edited_line_is_found() {
    let (origin, _sim) = peakguard_sim::start();
    let edge = Edge::start(
        "journal",
        &format!(
            "[[admin.tokens]]\nname = \"wordpress\"\ntoken = \"{PURGE_ONLY}\"\npermissions = [\"purge\"]\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n"
        ),
    );
    assert_eq!(
        call(
            &edge,
            "POST",
            "/purge?url=http://shop.test/page/a",
            PURGE_ONLY
        ),
        200
    );
    assert_eq!(
        call(&edge, "POST", "/maintenance?state=on", PURGE_ONLY),
        403
    );
    assert_eq!(call(&edge, "GET", "/status", TOKEN), 200);
    assert_eq!(
        call(
            &edge,
            "POST",
            "/maintenance?state=on&message=upgrade",
            TOKEN
        ),
        200
    );
    assert_eq!(call(&edge, "POST", "/maintenance?state=off", TOKEN), 200);

    let out = journal(&edge, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON entry"))
        .collect();
    // The refused call and the read are not changes: three entries.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["who"], "wordpress");
    assert_eq!(lines[0]["what"], "POST /purge");
    assert_eq!(lines[0]["detail"], "url=http%3A%2F%2Fshop.test%2Fpage%2Fa");
    assert_eq!(lines[1]["who"], "admin");
    assert_eq!(lines[1]["detail"], "message=upgrade&state=on");
    assert_eq!(lines[2]["detail"], "state=off");
    assert!(lines.iter().all(|l| l["result"] == "200"), "{lines:?}");
    let table = journal(&edge, &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("wordpress") && text.contains("POST /maintenance"),
        "{text}"
    );

    let verified = journal(&edge, &["--verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let file = edge.dir.join("journal.jsonl");
    let original = std::fs::read_to_string(&file).expect("journal");
    std::fs::write(&file, original.replacen("upgrade", "nothing", 1)).expect("edit");
    let broken = journal(&edge, &["--verify"]);
    let err = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{err}");
    assert!(err.contains("line 2") && err.contains("edited"), "{err}");
}
