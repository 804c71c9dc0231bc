//! Backup and rollback against the real WordPress environment (`scripts/wp-env.sh up`):
//! Debian's WordPress tree, a private MariaDB, and Debian's `restic` reading our repository.
//! Ignored by default; `scripts/test.sh` runs them after starting the environment.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_peakguard");

fn e2e_dir() -> PathBuf {
    PathBuf::from(std::env::var("PG_E2E_DIR").unwrap_or_else(|_| "/tmp/peakguard-e2e".into()))
}

fn socket() -> String {
    format!("{}/run/mysql.sock", e2e_dir().display())
}

fn wp_config() -> PathBuf {
    let out = Command::new("bash")
        .args(["scripts/wp-env.sh", "env"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("wp-env env");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("WP_CONFIG="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("wp-env.sh env printed no WP_CONFIG: {text}"))
}

fn sql(query: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--socket",
            &socket(),
            "-uroot",
            "-N",
            "-B",
            "peakguard_e2e",
            "-e",
            query,
        ])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn pg(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg(args[0])
        .arg("--config")
        .arg(config)
        .args(&args[1..])
        .env("PEAKGUARD_ADMIN", "127.0.0.1:1")
        .env("PEAKGUARD_TOKEN", "none")
        .output()
        .expect("run peakguard")
}

fn ok(out: std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// sha256 of every file under `dir`, sorted by path.
fn sums(dir: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("find . -path ./wp-content/cache -prune -o -type f -print0 | sort -z | xargs -0 sha256sum")
        .current_dir(dir)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A copy of Debian's WordPress tree and a config backing it up with the e2e database.
fn setup(name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("pg-backup-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let site = dir.join("site");
    let cp = Command::new("cp")
        .args(["-rL", "/usr/share/wordpress"])
        .arg(&site)
        .status()
        .expect("cp");
    assert!(cp.success());
    std::fs::create_dir_all(site.join("wp-content/uploads/2026/11")).expect("uploads");
    std::fs::write(
        site.join("wp-content/uploads/2026/11/hero.jpg"),
        vec![7u8; 300_000],
    )
    .expect("upload");
    std::fs::create_dir_all(site.join("wp-content/cache")).expect("cache");
    std::fs::write(site.join("wp-content/cache/page.html"), "cached").expect("cache file");
    let config = dir.join("peakguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[site]]\nname = \"shop\"\n[site.backup]\nroot = \"{}\"\nstate_dir = \"{}\"\nwp_config = \"{}\"\n{extra}",
            site.display(),
            dir.join("state").display(),
            wp_config().display()
        ),
    )
    .expect("config");
    (dir, config)
}

fn snapshot_id(output: &str) -> String {
    output
        .split_whitespace()
        .skip_while(|w| *w != "snapshot")
        .nth(1)
        .expect("snapshot id in output")
        .to_string()
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn restic_reads_what_peakguard_writes() {
    let (dir, config) = setup("restic", "");
    let id = snapshot_id(&ok(pg(&config, &["backup"])));
    let password = std::fs::read_to_string(dir.join("state/password")).expect("generated password");
    let restic = |args: &[&str]| {
        Command::new("restic")
            .arg("-r")
            .arg(dir.join("state/repo"))
            .args(args)
            .env("RESTIC_PASSWORD", password.trim())
            .output()
            .expect("restic")
    };
    let listed = ok(restic(&["snapshots", "--tag", &format!("pgid:{id}")]));
    assert!(listed.contains("1 snapshots"), "{listed}");
    ok(restic(&["check", "--read-data"]));
    let by_restic = dir.join("by-restic");
    ok(restic(&[
        "restore",
        "latest",
        "--target",
        by_restic.to_str().expect("utf8"),
    ]));
    let by_us = dir.join("by-peakguard");
    ok(pg(
        &config,
        &["restore", &id, "--to", by_us.to_str().expect("utf8")],
    ));
    let (a, b) = (sums(&by_restic), sums(&by_us));
    assert_eq!(a, b, "restic and peakguard restore different content");
    assert!(
        a.lines().count() > 1000,
        "a WordPress tree has > 1000 files"
    );
    let dump =
        std::fs::read_to_string(by_restic.join("database.sql")).expect("dump restored by restic");
    assert!(
        dump.contains("CREATE TABLE `wp_posts`"),
        "the dump is complete in restic's restore"
    );
    assert!(
        !by_us.join("site/wp-content/cache/page.html").exists(),
        "wp-content/cache is excluded"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn failing_dump_leaves_no_snapshot() {
    let (dir, config) = setup(
        "faildump",
        "[site.backup.database]\nname = \"no_such_database\"\n",
    );
    let out = pg(&config, &["backup"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database dump failed"), "{err}");
    let list = pg(&config, &["snapshots"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&list.stdout),
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        text.contains("0 snapshot(s)") || text.contains("does not exist yet"),
        "a failed dump must not leave a snapshot: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn rollback_returns_files_and_database_and_keeps_new_orders() {
    sql(
        "DROP TABLE IF EXISTS wp_wc_orders; CREATE TABLE wp_wc_orders (id BIGINT UNSIGNED PRIMARY KEY, status VARCHAR(20), total_amount DECIMAL(10,2)) ENGINE=InnoDB; INSERT INTO wp_wc_orders VALUES (1, 'wc-completed', 10.00);",
    );
    let (dir, config) = setup("rollback", "");
    let site = dir.join("site");
    let before_id = snapshot_id(&ok(pg(&config, &["backup"])));
    let before_files = sums(&site);
    let before_posts = sql("SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID");

    // The 2 a.m. change: a plugin file edited, a file added, one removed, posts changed.
    std::fs::write(site.join("wp-includes/version.php"), "<?php // broken\n").expect("edit");
    std::fs::write(site.join("wp-content/uploads/2026/11/new.jpg"), "new").expect("add");
    std::fs::remove_file(site.join("wp-content/uploads/2026/11/hero.jpg")).expect("remove");
    sql("UPDATE wp_posts SET post_title = CONCAT(post_title, ' BROKEN') WHERE post_type = 'post'");
    // A sale comes in after the snapshot.
    sql("INSERT INTO wp_wc_orders VALUES (2, 'wc-processing', 99.90)");
    let changed_files = sums(&site);
    let changed_posts = sql("SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID");
    assert_ne!(before_posts, changed_posts);

    let diff = ok(pg(&config, &["diff", &before_id, "latest"]));
    assert!(
        diff.contains("database unchanged"),
        "no snapshot after the change yet: {diff}"
    );

    let out = ok(pg(&config, &["rollback", &before_id]));
    assert!(
        out.contains("no edge answered"),
        "no edge runs here, it says so and goes on: {out}"
    );
    for step in [
        "safety snapshot",
        "restore files to staging",
        "import database",
        "carry over new orders",
        "swap files",
        "swap database tables",
    ] {
        assert!(out.contains(step), "step {step:?} printed: {out}");
    }
    assert_eq!(
        sums(&site),
        before_files,
        "files byte-for-byte as at the snapshot (excluded caches aside)"
    );
    assert_eq!(
        sql("SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID"),
        before_posts,
        "posts row-for-row"
    );
    assert_eq!(
        sql("SELECT id, status, total_amount FROM wp_wc_orders ORDER BY id"),
        "1\twc-completed\t10.00\n2\twc-processing\t99.90\n",
        "the order placed after the snapshot is kept"
    );

    // The rollback of the rollback: back to the changed state.
    let safety = out
        .lines()
        .find(|l| l.contains("undo with `peakguard rollback"))
        .and_then(|l| l.rsplit("rollback ").next())
        .map(|s| s.trim_end_matches(['`', ')']).to_string())
        .expect("safety snapshot id");
    let again = ok(pg(&config, &["rollback", &safety, "--no-keep-orders"]));
    assert!(again.contains("swap database tables"), "{again}");
    assert_eq!(
        sums(&site),
        changed_files,
        "undo restores the changed files"
    );
    assert_eq!(
        sql("SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID"),
        changed_posts
    );

    // Leave the shared environment as it was.
    ok(pg(&config, &["rollback", &before_id, "--no-keep-orders"]));
    sql("DROP TABLE IF EXISTS wp_wc_orders");
    let _ = std::fs::remove_dir_all(&dir);
}
