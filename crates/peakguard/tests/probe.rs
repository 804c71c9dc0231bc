//! `peakguard probe`: the real binary, probes against loopback servers.

use std::net::SocketAddr;
use std::process::Command;

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

fn probe(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .arg("probe")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run peakguard probe");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_prints_each_result_and_fails_when_one_fails() {
    let (addr, _origin) = peakguard_sim::start();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/page/home\"\nkeyword = \"Product 1\"\n\n\
             [[probe]]\nname = \"database\"\nkind = \"tcp\"\naddress = \"{}\"\n",
            closed_port()
        ),
    )
    .expect("config");
    let (code, out, err) = probe(&config, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("home") && l.contains(" ok ")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("database")
            && l.contains("FAIL")
            && l.contains("cannot connect")),
        "{out}"
    );
    assert!(err.contains("1 of 2 probes failed"), "{err}");

    let (code, out, _) = probe(&config, &["--only", "home", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json[0]["name"], "home");
    assert_eq!(json[0]["success"], true);
    assert_eq!(json[0]["http"]["status"], 200);
    assert_eq!(json.as_array().map(Vec::len), Some(1));

    let (code, _, err) = probe(&config, &["--only", "shop"]);
    assert_eq!(
        code,
        Some(2),
        "the command could not run: not a failed probe"
    );
    assert!(err.contains("no probe named \"shop\""), "{err}");
}

#[test]
fn a_mistake_in_a_probe_names_its_key_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    std::fs::write(&config, "[[probe]]\nname = \"db\"\nkind = \"tcp\"\n").expect("config");
    let (code, _, err) = probe(&config, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("probe[0].address"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn an_icmp_probe_without_permission_says_not_permitted_and_does_not_crash() {
    // In a network namespace of its own where no group may open datagram ICMP sockets
    // (net.ipv4.ping_group_range = "1 0"), and without CAP_NET_RAW: neither socket kind may
    // be opened.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("peakguard.toml");
    std::fs::write(
        &config,
        "[[probe]]\nname = \"gateway\"\nkind = \"icmp\"\naddress = \"127.0.0.1\"\ntimeout = \"3s\"\n",
    )
    .expect("config");
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg(
            "sysctl -qw net.ipv4.ping_group_range='1 0' && exec setpriv --bounding-set=-net_raw --inh-caps=-net_raw \"$0\" probe --config \"$1\"",
        )
        .arg(env!("CARGO_BIN_EXE_peakguard"))
        .arg(&config)
        .output()
        .expect("unshare + setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed probe, not a crash: {stdout}{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("gateway") && l.contains("FAIL") && l.contains("not permitted")),
        "{stdout}{stderr}"
    );
}
