//! The monitor's `dns` probe against a real DNS server: Debian's dnsmasq on loopback
//! (installed by `scripts/wp-env.sh install`), serving `shop.test` with a TTL of 300 s, and
//! the system's resolver for `localhost`; through `peakguard probe` as a user runs it.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// dnsmasq in the foreground on 127.0.0.1:`port`, answering for `*.test` only.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn dnsmasq() -> Dnsmasq {
    let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("dnsmasq (dnsmasq-base, installed by scripts/wp-env.sh install)");
    let seed = std::process::id() as u16;
    for attempt in 0..50u16 {
        let port = 20_000 + (seed.wrapping_mul(7).wrapping_add(attempt * 131)) % 10_000;
        if !free(port) {
            continue;
        }
        let child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=root",
                "--local=/test/",
                "--host-record=shop.test,203.0.113.7,300",
            ])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        let mut server = Dnsmasq { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // lost the port to someone else: try another
            }
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = server.child.kill();
    }
    panic!("dnsmasq did not start on a free port in 20000-29999");
}

fn probe_json(config: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["probe", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run peakguard probe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn result<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no result {name}: {results}"))
}

#[test]
fn a_dns_probe_checks_the_answer_and_its_ttl_from_a_named_or_the_system_resolver() {
    let dns = dnsmasq();
    let resolver = SocketAddr::from(([127, 0, 0, 1], dns.port));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    let probe = |name: &str, extra: &str| {
        format!("[[probe]]\nname = \"{name}\"\nkind = \"dns\"\ntimeout = \"5s\"\n{extra}\n")
    };
    let at = format!("resolver = \"{resolver}\"\n");
    std::fs::write(
        &config,
        [
            probe(
                "shop",
                &format!(
                    "query = \"shop.test\"\n{at}expect = [\"203.0.113.7\"]\nmax_ttl = \"10m\""
                ),
            ),
            probe(
                "moved",
                &format!("query = \"shop.test\"\n{at}expect = [\"198.51.100.9\"]"),
            ),
            probe(
                "ttl",
                &format!("query = \"shop.test\"\n{at}max_ttl = \"1m\""),
            ),
            probe("missing", &format!("query = \"nothere.test\"\n{at}")),
            probe("system", "query = \"localhost\"\nexpect = [\"127.0.0.1\"]"),
        ]
        .concat(),
    )
    .expect("config");
    let (code, results, err) = probe_json(&config);
    assert_eq!(code, Some(1), "three of them fail: {results} {err}");
    let shop = result(&results, "shop");
    assert_eq!(shop["success"], true, "{shop}");
    assert_eq!(shop["kind"], "dns");
    assert_eq!(shop["values"]["ttl"], 300.0, "{shop}");
    assert_eq!(shop["values"]["addresses"], 1.0);
    assert_eq!(shop["values"]["expected"], 1.0);
    let moved = result(&results, "moved");
    assert_eq!(moved["success"], false);
    assert!(
        moved["message"]
            .as_str()
            .is_some_and(|m| m.contains("[203.0.113.7], expected [198.51.100.9]")),
        "{moved}"
    );
    assert_eq!(moved["values"]["expected"], 0.0);
    let ttl = result(&results, "ttl");
    assert_eq!(ttl["success"], false);
    assert!(
        ttl["message"]
            .as_str()
            .is_some_and(|m| m.contains("TTL 300 s")),
        "{ttl}"
    );
    let missing = result(&results, "missing");
    assert_eq!(missing["success"], false, "{missing}");
    assert_eq!(missing["values"]["addresses"], 0.0);
    let system = result(&results, "system");
    assert_eq!(system["success"], true, "{system}");
}

#[test]
fn a_dns_probe_mistake_names_its_key_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    std::fs::write(
        &config,
        "[[probe]]\nname = \"shop\"\nkind = \"dns\"\nquery = \"shop.test\"\nresolver = \"not-an-ip\"\n\
         [[alert]]\nname = \"slow-dns\"\nprobe = \"shop\"\nwhen = \"ttl > 600\"\n",
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("run peakguard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("line 5") && err.contains("probe[0].resolver"),
        "{err}"
    );
    assert!(
        !err.contains("alert[0]"),
        "`ttl` is a value a dns probe reports: {err}"
    );
}
