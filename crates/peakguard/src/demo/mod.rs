//! `peakguard demo`: the embedded default for a newcomer. A simulated WordPress-like origin
//! (4 "PHP workers", ~150 ms per page, a switch that fails its "database"), the edge in front,
//! the same short peak replayed by `peakguard rehearse`'s engine against both (open model:
//! visitors arrive at the rate whatever the server does), and a side-by-side table; then the
//! same with the database failed. Everything on loopback, bounded in time and requests.

use crate::cli::DemoArgs;
use anyhow::{Context, Result, bail};
use peakguard_rehearse::classes::{ClassSpec, Kind};
use peakguard_rehearse::client::{Client, Target};
use peakguard_rehearse::profile::Profile;
use peakguard_rehearse::report::Report;
use peakguard_rehearse::run::{Limits, Plan, run as run_plan};
use peakguard_rehearse::targets::{Page, Pages};
use peakguard_sim::SimOrigin;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a demo request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

async fn wait_ready(addr: SocketAddr) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the edge did not start listening on {addr}")
}

/// One phase: `rate` visitors a second for `secs` over 40 pages, browser headers.
async fn replay(
    target: SocketAddr,
    rate: f64,
    secs: Duration,
    concurrency: usize,
) -> Result<Report> {
    let client = Arc::new(Client::new(
        Target::new(&format!("http://{target}"), &[], false, false)?,
        REQUEST_TIMEOUT,
    )?);
    let pages = Pages::new(
        (0..40)
            .map(|i| Page {
                path: format!("/blog/page-{i}/"),
                weight: 1.0,
                group: "pages".into(),
            })
            .collect(),
    )?;
    let plan = Plan {
        client,
        profile: Profile::constant(rate, secs),
        profile_text: format!("{rate}/s for {}s", secs.as_secs()),
        pages,
        classes: vec![ClassSpec::simple(Kind::Anonymous, 1.0)],
        limits: Limits {
            concurrency,
            backlog: 10_000,
            max_requests: 100_000,
            timeout: REQUEST_TIMEOUT,
        },
        raw: false,
        warm_after: None,
    };
    Ok(run_plan(plan, Arc::new(|_| {})).await?)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn row(name: &str, r: &Report, origin_requests: u64) {
    println!(
        "  {:<34} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>9} {:>9}",
        name,
        r.achieved_rps,
        r.total.p50_ms,
        r.total.p99_ms,
        r.total.errors,
        r.not_sent,
        origin_requests
    );
}

fn header() {
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}",
        "", "req/s", "p50 ms", "p99 ms", "errors", "not sent", "origin"
    );
}

pub fn run(args: DemoArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let edge_port = free_port()?;
    let admin_port = free_port()?;
    let sim = SimOrigin::wordpress_like(4, Duration::from_millis(150));
    let origin_listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("a loopback port for the simulated origin")?;
    let origin_addr = origin_listener.local_addr()?;
    rt.spawn(peakguard_sim::serve(origin_listener, sim.clone()));

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
    let config = crate::extensions_of(|e| peakguard_config::parse_with(&config_text, "demo", e))
        .context("demo configuration")?;
    let (server, _state) = peakguard_edge::build_server(peakguard_edge::ServeOptions {
        config,
        config_path: None,
        read_config: std::sync::Arc::new(crate::read_config),
        upgrade: false,
        extensions: Vec::new(),
    })?;
    std::thread::spawn(move || server.run_forever());
    rt.block_on(wait_ready(([127, 0, 0, 1], edge_port).into()))?;

    let secs = Duration::from_secs(args.seconds.clamp(2, 60));
    let conns = args.connections.clamp(1, 500);
    let rate = args.rate.clamp(1.0, 2_000.0);
    println!(
        "peakguard demo: a simulated WordPress (4 PHP workers, 150 ms per page: about 27 pages/s) on\n{origin_addr}, peakguard in front on 127.0.0.1:{edge_port}. The same peak against both: {rate} visitors/s\nfor {}s over 40 pages, at most {conns} at once, browser headers (the engine of `peakguard rehearse`).\n",
        secs.as_secs()
    );
    let edge: SocketAddr = ([127, 0, 0, 1], edge_port).into();
    let phase = |target: SocketAddr| -> Result<(Report, u64)> {
        let before = sim.requests();
        let report = rt.block_on(replay(target, rate, secs, conns))?;
        Ok((report, sim.requests() - before))
    };

    println!("Healthy origin:");
    header();
    let (r, o) = phase(origin_addr)?;
    row("direct to the origin", &r, o);
    let (r, o) = phase(edge)?;
    row("through peakguard", &r, o);

    println!("\nThe origin's database fails (pages the edge has seen are served stale):");
    std::thread::sleep(Duration::from_secs(3)); // let the 2s demo TTL expire: Plan B is stale-if-error
    sim.set_db_down(true);
    header();
    let (r, o) = phase(origin_addr)?;
    row("direct to the origin", &r, o);
    let (r, o) = phase(edge)?;
    row("through peakguard", &r, o);
    println!(
        "\nLatency counts from when each visitor arrived, so a queue at the origin shows in p99; 'errors'\ncounts responses other than 2xx/3xx and requests unanswered {}s after they were sent; 'not sent'\ncounts visitors still queued (the client's connections all busy) when the run ended. With the\ndatabase down, the origin answers 500 to every page; peakguard keeps serving the copies it has (Cache-Status:\n...; fwd=stale) and shows a branded 503 with Retry-After for pages it never saw.",
        REQUEST_TIMEOUT.as_secs()
    );
    drop(tmp);
    Ok(())
}
