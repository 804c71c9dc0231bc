//! `peakguard demo`: the embedded default for a newcomer. A simulated WordPress-like origin
//! (4 "PHP workers", ~150 ms per page, a switch that fails its "database"), the edge in front,
//! a short bounded spike against both, and a side-by-side table; then the same with the
//! database failed. Everything on loopback, bounded in time.

mod load;
mod origin;

use crate::cli::DemoArgs;
use anyhow::{Context, Result};
use load::{LoadReport, run_load};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn row(name: &str, r: &LoadReport, origin_requests: u64) {
    println!(
        "  {:<34} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>9}",
        name,
        r.rps(),
        r.p50_ms(),
        r.p99_ms(),
        r.errors,
        origin_requests
    );
}

fn header() {
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "", "req/s", "p50 ms", "p99 ms", "errors", "origin"
    );
}

pub fn run(args: DemoArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let origin_port = free_port()?;
    let edge_port = free_port()?;
    let admin_port = free_port()?;
    let origin_addr: SocketAddr = ([127, 0, 0, 1], origin_port).into();
    let sim = Arc::new(origin::SimOrigin::new(4, Duration::from_millis(150)));
    rt.spawn(origin::serve(origin_addr, sim.clone()));

    // A fresh private directory (random name, 0700): never a predictable path in /tmp.
    let tmp = tempfile::Builder::new()
        .prefix("peakguard-demo-")
        .tempdir()
        .context("a temporary directory for the demo")?;
    let dir = tmp.path().to_path_buf();
    let config_text = format!(
        r#"
[server]
listen = ["127.0.0.1:{edge_port}"]
threads = 1
pid_file = "{dir}/pid"
upgrade_sock = "{dir}/upgrade.sock"
[admin]
listen = "127.0.0.1:{admin_port}"
token = "demo"
[cache]
disk_path = "{dir}/cache"
memory_size = "64MiB"
[maintenance]
state_file = "{dir}/maintenance.json"
[shield]
state_file = "{dir}/shield.json"
room_key_file = "{dir}/room.key"
[[site]]
name = "demo"
origin = "http://{origin_addr}"
default_ttl = "2s"
"#,
        dir = dir.display()
    );
    let config = peakguard_config::parse(&config_text, "demo").context("demo configuration")?;
    let (server, _state) = peakguard_edge::build_server(peakguard_edge::ServeOptions {
        config,
        config_path: None,
        upgrade: false,
        extensions: Vec::new(),
    })?;
    std::thread::spawn(move || server.run_forever());
    rt.block_on(load::wait_ready(([127, 0, 0, 1], edge_port).into()))?;

    let secs = Duration::from_secs(args.seconds.clamp(2, 60));
    let conns = args.connections.clamp(1, 500);
    println!(
        "peakguard demo: a simulated WordPress (4 PHP workers, 150 ms per page) on {origin_addr},\npeakguard in front on 127.0.0.1:{edge_port}; {conns} visitors for {}s per run over 40 pages.\n",
        secs.as_secs()
    );
    let edge: SocketAddr = ([127, 0, 0, 1], edge_port).into();
    let phase = |target: SocketAddr| {
        let before = sim.requests.load(Ordering::Relaxed);
        let report = rt.block_on(run_load(target, conns, secs, 40));
        (report, sim.requests.load(Ordering::Relaxed) - before)
    };

    println!("Healthy origin:");
    header();
    let (r, o) = phase(origin_addr);
    row("direct to the origin", &r, o);
    let (r, o) = phase(edge);
    row("through peakguard", &r, o);

    println!("\nThe origin's database fails (pages the edge has seen are served stale):");
    std::thread::sleep(Duration::from_secs(3)); // let the 2s demo TTL expire: Plan B is stale-if-error
    sim.db_failed.store(true, Ordering::Relaxed);
    header();
    let (r, o) = phase(origin_addr);
    row("direct to the origin", &r, o);
    let (r, o) = phase(edge);
    row("through peakguard", &r, o);
    println!(
        "\n'errors' counts responses other than 2xx/3xx. With the database down, the origin answers 500 to\nevery page; peakguard keeps serving the copies it has (Cache-Status: ...; fwd=stale) and shows a\nbranded 503 with Retry-After for pages it never saw."
    );
    drop(tmp);
    Ok(())
}
