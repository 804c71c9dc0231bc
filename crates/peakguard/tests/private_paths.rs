//! `peakguard serve` keeps nothing where another local user could plant it: a state or cache
//! directory open to others, or a token file others may read, stops the start with the path
//! and the fix; the admin API stays on loopback unless allowed.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Runs `peakguard serve` on `config`; it must fail. Returns what it printed.
fn refused(dir: &std::path::Path, config: &str) -> String {
    let path = dir.join("edge.toml");
    std::fs::write(&path, config).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run peakguard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "it started: {text}");
    text
}

fn config(dir: &std::path::Path, state: &std::path::Path, admin: &str) -> String {
    let [port, ..] = ports();
    let d = dir.display();
    let s = state.display();
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\npid_file = \"{d}/pid\"\nupgrade_sock = \"{d}/upgrade.sock\"\n[admin]\nlisten = \"{admin}\"\ntoken_file = \"{s}/admin.token\"\n[cache]\ndisk_path = \"{d}/cache\"\n[maintenance]\nstate_file = \"{d}/maintenance.json\"\n[shield]\nstate_file = \"{d}/shield.json\"\nroom_key_file = \"{d}/room.key\"\n[[site]]\norigin = \"http://127.0.0.1:1\"\n"
    )
}

#[test]
fn a_state_directory_open_to_others_stops_the_start_with_the_fix() {
    let dir = fresh_dir("private-open-dir");
    let open = dir.join("open");
    std::fs::create_dir(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let admin = format!("127.0.0.1:{}", ports()[1]);
    let text = refused(&dir, &config(&dir, &open, &admin));
    assert!(text.contains(&open.display().to_string()), "{text}");
    assert!(text.contains("chmod 700"), "{text}");
    assert!(
        !open.join("admin.token").exists(),
        "no token written into it"
    );
}

#[test]
fn a_token_file_others_can_read_is_refused_and_never_sent() {
    let dir = fresh_dir("private-token");
    let state = dir.join("state");
    std::fs::create_dir(&state).expect("dir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let token = state.join("admin.token");
    std::fs::write(&token, "planted-token").expect("plant");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let admin = format!("127.0.0.1:{}", ports()[1]);
    let text = refused(&dir, &config(&dir, &state, &admin));
    assert!(text.contains("admin.token"), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
    assert!(
        !text.contains("planted-token"),
        "the secret is not printed: {text}"
    );
    // A symbolic link in its place is not followed either.
    std::fs::remove_file(&token).expect("rm");
    let elsewhere = dir.join("elsewhere");
    std::fs::write(&elsewhere, "attacker").expect("write");
    std::os::unix::fs::symlink(&elsewhere, &token).expect("symlink");
    let text = refused(&dir, &config(&dir, &state, &admin));
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&elsewhere).expect("read"),
        "attacker"
    );
}

#[test]
fn the_admin_api_on_a_public_address_needs_allow_remote() {
    let dir = fresh_dir("private-admin");
    let state = dir.join("state");
    let text = refused(
        &dir,
        &config(&dir, &state, &format!("0.0.0.0:{}", ports()[1])),
    );
    assert!(text.contains("admin.listen"), "{text}");
    assert!(text.contains("allow_remote"), "{text}");
}

#[test]
fn installed_rule_sets_others_can_write_stop_the_start_with_the_fix() {
    let dir = fresh_dir("private-crs-home");
    let crs_home = dir.join("crs");
    std::fs::create_dir(&crs_home).expect("dir");
    std::fs::set_permissions(&crs_home, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let state = dir.join("state");
    let admin = format!("127.0.0.1:{}", ports()[1]);
    let text = refused(
        &dir,
        &format!(
            "{}[site.waf]\n[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{c}\"\n",
            config(&dir, &state, &admin),
            d = dir.display(),
            c = crs_home.display()
        ),
    );
    assert!(text.contains(&crs_home.display().to_string()), "{text}");
    assert!(text.contains("chmod 700"), "{text}");
}
