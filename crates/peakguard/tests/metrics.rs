//! `/metrics` as Prometheus reads it: the whole text passes `promtool check metrics`, and a
//! site whose name holds a quote and a backslash is escaped in every family that names it
//! (guards, admission, waiting room, WAF), all written by the one writer
//! (peakguard-prometheus).

mod common;

use common::{Edge, crs4_site_waf, fresh_dir, get, ports};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn metrics_pass_promtool_and_escape_site_names_everywhere() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("metrics");
    let mut edge = Edge::start_in(
        dir.to_path_buf(),
        p,
        a,
        &format!(
            "[waf]\nlog = \"{d}/waf.jsonl\"\nworkers = 1\ncrs_home = \"{d}/crs\"\n\
             [[site]]\nname = 'sh\"op\\1'\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n\
             [site.shield.admission]\nenabled = true\n[site.shield.waiting_room]\nenabled = true\nactive_users = 100\n\
             [site.waf]\n{crs}",
            d = dir.display(),
            crs = crs4_site_waf()
        ),
        false,
    );
    edge.own_dir(dir);
    for path in ["/", "/?s=1", "/.env"] {
        get(edge.addr, "shop.test", path);
    }
    let text = edge.admin_get("/metrics").text();
    let escaped = r#"site="sh\"op\\1""#;
    for family in [
        "peakguard_origin_limit",
        "peakguard_admission_total",
        "peakguard_waiting_room_waiting",
        "peakguard_waf_inspections_total",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{family}{{")))
            .unwrap_or_else(|| panic!("{family} missing:\n{text}"));
        assert!(line.contains(escaped), "{family}: {line}");
    }
    assert!(
        !text.contains("sh\"op") && !text.contains("sh'op"),
        "no raw or altered name"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (installed by scripts/wp-env.sh install)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool exits 1 for a text it cannot parse, 3 for lint findings (naming advice).
    assert!(out.status.success(), "promtool check metrics: {report}");
}
