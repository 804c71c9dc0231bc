//! The simulated origin as a process, for the benchmarks (127.0.0.1 only):
//!
//!     cargo run --release -p peakguard-sim --example sim_origin -- PORT [--stall-at S]
//!         [--workers N --page-ms MS]
//!
//! `--stall-at S`: every response due in the one second that begins S seconds after the
//! first request waits until that second is over (a stalled server). `--workers N
//! --page-ms MS`: N "PHP workers" taking MS ms per request. Runs until killed.

use peakguard_sim::SimOrigin;
use std::time::Duration;

fn usage(why: &str) -> ! {
    eprintln!(
        "sim_origin: {why}\nusage: sim_origin PORT [--stall-at SECONDS] [--workers N --page-ms MS]"
    );
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> T {
    match value.as_deref().map(str::parse) {
        Some(Ok(v)) => v,
        _ => usage(&format!("{flag} needs a number")),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = number("PORT", args.next());
    let (mut stall_at, mut workers, mut page_ms) = (None::<f64>, None::<usize>, 0u64);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--stall-at" => stall_at = Some(number(&flag, args.next())),
            "--workers" => workers = Some(number(&flag, args.next())),
            "--page-ms" => page_ms = number(&flag, args.next()),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let origin = match (stall_at, workers) {
        (Some(s), None) => SimOrigin::stalling_once(Duration::from_secs_f64(s.clamp(0.0, 3600.0))),
        (None, Some(n)) => SimOrigin::wordpress_like(n, Duration::from_millis(page_ms)),
        (None, None) => SimOrigin::new(),
        (Some(_), Some(_)) => usage("--stall-at and --workers are separate modes"),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => usage(&format!("no runtime: {e}")),
    };
    rt.block_on(async move {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => peakguard_sim::serve(listener, origin).await,
            Err(e) => usage(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
        }
    })
}
