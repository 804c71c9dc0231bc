//! The monitor against the real WordPress of `scripts/wp-env.sh`: its MariaDB stopped and
//! started again, its update data set to a pending security release older than the delay,
//! and the backup daemon's snapshots inside `serve`. Run by scripts/test.sh after
//! `wp-env.sh up` (`--include-ignored`).

mod common;

use common::{Edge, Proc, TOKEN, fresh_dir, ports, request, wait_until, wp::script};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn e2e_dir() -> PathBuf {
    PathBuf::from(std::env::var("PG_E2E_DIR").unwrap_or_else(|_| "/tmp/peakguard-e2e".into()))
}

/// Starts the database again even when the test fails half-way.
struct DbBack;
impl Drop for DbBack {
    fn drop(&mut self) {
        script(&["db-start"]);
    }
}

/// WordPress's own update data removed when the test ends.
struct TransientsBack;
impl Drop for TransientsBack {
    fn drop(&mut self) {
        script(&["php", "delete_option('_site_transient_update_core');"]);
    }
}

/// The connection keys for the e2e database (wp-env.sh's `wp` user).
fn database() -> String {
    format!(
        "socket = \"{}/run/mysql.sock\"\nuser = \"wp\"\npassword = \"wp-e2e\"\ndatabase = \"peakguard_e2e\"\n",
        e2e_dir().display()
    )
}

fn start_monitor(dir: &std::path::Path, admin: u16, body: &str) -> Proc {
    let config = dir.join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n[maintenance]\nstate_file = \"{d}/maintenance.json\"\n[monitor]\nstate_file = \"{d}/monitor.json\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n{body}",
            d = dir.display()
        ),
    )
    .expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .arg("monitor")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("monitor.log")).expect("log"))
        .spawn()
        .expect("peakguard monitor");
    let addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    wait_until("the monitor's API", WAIT, || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    Proc(child)
}

fn admin_json(admin: SocketAddr, path: &str) -> Value {
    let r = request(
        admin,
        "GET",
        "admin",
        path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    serde_json::from_slice(&r.body).unwrap_or_default()
}

fn last(admin: SocketAddr, probe: &str) -> Value {
    admin_json(admin, "/probes")["probes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == probe).cloned())
        .and_then(|p| p["history"].as_array().and_then(|h| h.last().cloned()))
        .unwrap_or_default()
}

fn bodies(got: &[peakguard_sim::receiver::Received]) -> Vec<Value> {
    got.iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect()
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn the_mariadb_probe_sees_the_real_database_stop_and_start_and_alerts_both_ways() {
    let [admin, ..] = ports();
    let dir = fresh_dir("monitor-mariadb");
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let _monitor = start_monitor(
        &dir,
        admin,
        &format!(
            "[[probe]]\nname = \"db\"\nkind = \"mariadb\"\n{}interval = \"300ms\"\ntimeout = \"3s\"\n[[alert]]\nname = \"DatabaseDown\"\nprobe = \"db\"\nwhen = \"down\"\nseverity = \"critical\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
            database()
        ),
    );
    let admin: SocketAddr = ([127, 0, 0, 1], admin).into();
    wait_until("SELECT 1 on the real MariaDB", WAIT, || {
        last(admin, "db")["success"] == true
    });
    let r = last(admin, "db");
    assert!(
        r["values"]["query_time"].as_f64().is_some_and(|t| t > 0.0),
        "{r}"
    );
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("SELECT 1 in")),
        "{r}"
    );

    script(&["db-stop"]);
    let back = DbBack;
    wait_until("the probe to fail", WAIT, || {
        last(admin, "db")["success"] == false
    });
    let r = last(admin, "db");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{r}"
    );
    hooked
        .wait_for(WAIT, |got| {
            bodies(got).iter().any(|b| b["status"] == "firing")
        })
        .expect("DatabaseDown fires");
    drop(back); // db-start
    wait_until("the probe to pass again", WAIT, || {
        last(admin, "db")["success"] == true
    });
    let got = hooked
        .wait_for(WAIT, |got| {
            bodies(got).iter().any(|b| b["status"] == "resolved")
        })
        .expect("DatabaseDown resolves");
    let resolved = bodies(&got)
        .into_iter()
        .find(|b| b["status"] == "resolved")
        .expect("resolved");
    assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "DatabaseDown");

    // Replication is checked only when asked, and this server is no replica.
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["probe", "--config"])
        .arg({
            let c = dir.join("replica.toml");
            std::fs::write(
                &c,
                format!(
                    "[[probe]]\nname = \"replica\"\nkind = \"mariadb\"\nsocket = \"{}/run/mysql.sock\"\nuser = \"root\"\nmax_lag = \"30s\"\n",
                    e2e_dir().display()
                ),
            )
            .expect("config");
            c
        })
        .output()
        .expect("peakguard probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not a replica"), "{text}");
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn a_pending_security_release_older_than_the_delay_fails_the_wordpress_probe() {
    // WordPress's own update data: a minor release above the installed version (a security
    // release, as WordPress ships them), checked just now so WordPress does not check again.
    // Written as the option set_site_transient() writes (wp-env's PHP runs as the installer,
    // whose transients stay in memory).
    let _restore = TransientsBack;
    let set = script(&[
        "php",
        r#"$v = get_bloginfo('version'); $p = explode('.', $v);
$next = $p[0] . '.' . $p[1] . '.' . ((isset($p[2]) ? intval($p[2]) : 0) + 1);
$o = new stdClass; $o->updates = array((object) array('response' => 'upgrade', 'current' => $next, 'version' => $next, 'locale' => 'en_US'));
$o->last_checked = time(); $o->version_checked = $v; $o->translations = array();
update_option('_site_transient_update_core', $o, false); echo "$v $next";"#,
    ]);
    let (installed, next) = set.split_once(' ').expect("versions");
    let [admin, ..] = ports();
    let dir = fresh_dir("monitor-wordpress");
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let _monitor = start_monitor(
        &dir,
        admin,
        &format!(
            "[[probe]]\nname = \"updates\"\nkind = \"wordpress\"\n{}security_delay = \"2s\"\ninterval = \"500ms\"\n[[alert]]\nname = \"UpdatesPending\"\nprobe = \"updates\"\nwhen = \"updates_pending > 0\"\nseverity = \"warning\"\n[[alert]]\nname = \"SecurityUpdateOverdue\"\nprobe = \"updates\"\nwhen = \"security_overdue > 0\"\nseverity = \"critical\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
            database()
        ),
    );
    let admin: SocketAddr = ([127, 0, 0, 1], admin).into();
    wait_until("a first run", WAIT, || !last(admin, "updates").is_null());
    let first = last(admin, "updates");
    assert_eq!(first["success"], true, "pending, not yet overdue: {first}");
    assert_eq!(first["values"]["core_updates"], 1.0, "{first}");
    assert_eq!(first["values"]["security_updates"], 1.0, "{first}");
    let shown = format!("WordPress {installed} → {next} (security)");
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains(&shown)),
        "{first}"
    );
    // The warning is told at once; the delay passes, then the probe fails and the critical
    // alert follows.
    wait_until("the delay to pass", WAIT, || {
        last(admin, "updates")["success"] == false
    });
    let r = last(admin, "updates");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("security release pending longer than 2s")),
        "{r}"
    );
    let got = hooked
        .wait_for(WAIT, |got| {
            let names: Vec<Value> = bodies(got)
                .iter()
                .map(|b| b["groupLabels"]["alertname"].clone())
                .collect();
            names.contains(&Value::from("UpdatesPending"))
                && names.contains(&Value::from("SecurityUpdateOverdue"))
        })
        .expect("both alerts");
    let overdue = bodies(&got)
        .into_iter()
        .find(|b| b["groupLabels"]["alertname"] == "SecurityUpdateOverdue")
        .expect("overdue");
    assert_eq!(overdue["alerts"][0]["labels"]["severity"], "critical");
    // When it was first seen is kept (a restart does not reset the clock).
    let kept = std::fs::read_to_string(dir.join("monitor-probe-updates.json")).expect("kept");
    assert!(kept.contains(&format!("core:{next}")), "{kept}");
}

#[test]
#[ignore = "needs scripts/wp-env.sh up"]
fn backup_probes_in_serve_see_the_last_snapshots_age_and_the_bunkers_lag() {
    let [port, admin_port, dead_port, _] = ports();
    let dir = fresh_dir("monitor-backup");
    let site = dir.join("site");
    assert!(
        Command::new("cp")
            .args(["-rL", "/usr/share/wordpress"])
            .arg(&site)
            .status()
            .expect("cp")
            .success()
    );
    std::fs::write(dir.join("bunker-password"), "bunker secret").expect("password");
    let wp_config = std::env::var("WP_CONFIG").expect("WP_CONFIG (scripts/wp-env.sh env)");
    let extra = format!(
        "[[site]]\nname = \"shop\"\norigin = \"http://127.0.0.1:1\"\n[site.backup]\nroot = \"{}\"\nstate_dir = \"{d}/state\"\nwp_config = \"{wp_config}\"\nevery = \"1h\"\n[site.backup.bunker]\nrepository = \"rest:http://127.0.0.1:{dead_port}/\"\npassword_file = \"{d}/bunker-password\"\n[site.backup.bunker.options]\nretry = \"false\"\n[monitor]\nstate_file = \"{d}/monitor.json\"\n[[probe]]\nname = \"backups\"\nkind = \"backup\"\nsite = \"shop\"\nmax_age = \"1h\"\nmax_bunker_lag = \"3s\"\ninterval = \"500ms\"\n[[probe]]\nname = \"backups-strict\"\nkind = \"backup\"\nsite = \"shop\"\nmax_age = \"3s\"\nmax_bunker_lag = \"1h\"\ninterval = \"500ms\"\n",
        site.display(),
        d = dir.display(),
    );
    let edge = Edge::start_in(dir.to_path_buf(), port, admin_port, &extra, false);
    let admin = edge.admin;
    // The daemon's first snapshot at start; the bunker (nobody listens there) stays behind.
    wait_until("a fresh snapshot", WAIT, || {
        let r = last(admin, "backups");
        r["values"]["age"].as_f64().is_some()
    });
    let r = last(admin, "backups");
    assert!(
        r["values"]["age"].as_f64().is_some_and(|a| a < 3600.0),
        "{r}"
    );
    wait_until("the bunker lag to pass its limit", WAIT, || {
        let r = last(admin, "backups");
        r["success"] == false
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("the bunker is"))
    });
    let r = last(admin, "backups");
    assert!(
        r["values"]["bunker_lag"].as_f64().is_some_and(|l| l > 3.0),
        "{r}"
    );
    assert!(
        !r["message"]
            .as_str()
            .unwrap_or("")
            .contains("last good snapshot is"),
        "{r}"
    );
    wait_until(
        "the strict probe to find the snapshot too old",
        WAIT,
        || {
            let r = last(admin, "backups-strict");
            r["success"] == false
                && r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("the last good snapshot is"))
        },
    );
    drop(edge);
}
