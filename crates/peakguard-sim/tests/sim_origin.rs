//! The simulated origin's knobs, over real sockets.

use peakguard_sim::SimOrigin;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request on its own connection: (status, whole response text).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn pages_queue_for_the_php_workers() {
    let origin = SimOrigin::wordpress_like(1, Duration::from_millis(300));
    let addr = peakguard_sim::try_start(origin.clone()).expect("start");
    let started = Instant::now();
    let both: Vec<_> = (0..2)
        .map(|i| std::thread::spawn(move || get(addr, &format!("/blog/p{i}/"))))
        .collect();
    for t in both {
        let (status, text) = t.join().expect("client thread");
        assert_eq!(status, 200);
        assert!(text.contains("text/html") && !text.to_lowercase().contains("cache-control"));
    }
    // One worker: the second page waited for the first (a lower bound only).
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(origin.requests(), 2);
    assert_eq!(origin.count("/blog/"), 2);
}

#[test]
fn a_failed_database_fails_every_page_but_not_static_files() {
    let origin = SimOrigin::new();
    let addr = peakguard_sim::try_start(origin.clone()).expect("start");
    assert_eq!(get(addr, "/flaky").0, 200);
    origin.set_db_down(true);
    let (status, text) = get(addr, "/flaky");
    assert_eq!(status, 500);
    assert!(text.contains("Error establishing a database connection"));
    assert_eq!(get(addr, "/blog/x/").0, 500);
    assert_eq!(get(addr, "/photo.jpg").0, 200);
    origin.set_db_down(false);
    assert_eq!(get(addr, "/flaky").0, 200);
}

#[test]
fn a_stall_holds_requests_until_it_ends() {
    let (addr, origin) = peakguard_sim::start();
    *origin.stall_until.lock().expect("lock") = Some(Instant::now() + Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(get(addr, "/cacheable").0, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn numbers_from_the_query_are_clamped() {
    let (addr, _origin) = peakguard_sim::start();
    // `mb` past the limit is cut to it; the header says so before any body is sent.
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET /big?mb=99999999999 HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        s.read_exact(&mut byte).expect("read the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        head.contains(&format!("content-length: {}", 4096usize << 20)),
        "{head}"
    );
}
