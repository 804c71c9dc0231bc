use super::*;
use std::sync::atomic::AtomicUsize;

const LONG: Duration = Duration::from_secs(30);

fn in_flight(a: &Admission) -> usize {
    a.snapshot().in_flight
}

fn waiting(a: &Admission) -> usize {
    a.snapshot().waiting.iter().sum()
}

#[tokio::test]
async fn slots_up_to_the_limit_then_lanes_by_priority_and_fifo_within_a_lane() {
    let a = Admission::new("t", 2, 16);
    let first = a.ticket(Lane::Anonymous, LONG);
    let second = a.ticket(Lane::Bot, LONG);
    assert!(first.immediate() && second.immediate());
    let p1 = first.wait().await.expect("slot");
    let p2 = second.wait().await.expect("slot");
    assert_eq!(in_flight(&a), 2);

    // Queued in this order; served checkout, session, anonymous (FIFO), bot.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (name, lane) in [
        ("bot", Lane::Bot),
        ("anon-1", Lane::Anonymous),
        ("session", Lane::Session),
        ("anon-2", Lane::Anonymous),
        ("checkout", Lane::Checkout),
    ] {
        let ticket = a.ticket(lane, LONG);
        assert!(!ticket.immediate(), "{name} must wait");
        let tx = tx.clone();
        tokio::spawn(async move {
            let admitted = ticket.wait().await.expect("admitted");
            let _ = tx.send((name, admitted));
        });
    }
    assert_eq!(waiting(&a), 5);
    // Each finished request lets exactly one waiter in; the count never exceeds the limit.
    drop(p1);
    let mut order = Vec::new();
    for _ in 0..5 {
        let (name, admitted) = tokio::time::timeout(LONG, rx.recv())
            .await
            .expect("somebody is let in")
            .expect("channel open");
        assert_eq!(in_flight(&a), 2, "the slot is handed over, never more");
        order.push(name);
        drop(admitted);
    }
    assert_eq!(
        order,
        vec!["checkout", "session", "anon-1", "anon-2", "bot"]
    );
    drop(p2);
    assert_eq!(in_flight(&a), 0);
    let s = a.snapshot();
    assert_eq!(s.admitted_after_wait.iter().sum::<u64>(), 5);
    assert_eq!(s.admitted_at_once.iter().sum::<u64>(), 2);
    assert_eq!(s.peak_in_flight, 2);
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_at_its_deadline_and_leaves_its_lane() {
    let a = Admission::new("t", 1, 16);
    let held = a.ticket(Lane::Anonymous, LONG).wait().await.expect("slot");
    let started = Instant::now();
    let refused = a
        .ticket(Lane::Checkout, Duration::from_millis(50))
        .wait()
        .await;
    assert!(matches!(refused, Err(Refused::TimedOut)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(waiting(&a), 0, "a timed-out waiter holds no place");
    assert_eq!(a.snapshot().timed_out[Lane::Checkout as usize], 1);
    drop(held);
    assert_eq!(in_flight(&a), 0);
    assert!(a.ticket(Lane::Anonymous, LONG).immediate());
}

#[tokio::test]
async fn a_full_lane_refuses_at_once_and_other_lanes_still_queue() {
    let a = Admission::new("t", 1, 2);
    let _held = a.ticket(Lane::Anonymous, LONG).wait().await.expect("slot");
    let _w1 = a.ticket(Lane::Bot, LONG);
    let _w2 = a.ticket(Lane::Bot, LONG);
    let refused = a.ticket(Lane::Bot, LONG).wait().await;
    assert!(matches!(refused, Err(Refused::LaneFull)));
    let other = a.ticket(Lane::Checkout, LONG);
    assert!(!other.immediate());
    assert_eq!(waiting(&a), 3);
    assert_eq!(a.snapshot().lane_full[Lane::Bot as usize], 1);
}

#[tokio::test]
async fn a_waiter_that_goes_away_gives_its_place_up_and_leaks_no_slot() {
    let a = Admission::new("t", 1, 16);
    let held = a.ticket(Lane::Anonymous, LONG).wait().await.expect("slot");
    // A client that disconnects while waiting: its future is dropped.
    let gone = tokio::spawn(a.ticket(Lane::Session, LONG).wait());
    let stays = a.ticket(Lane::Anonymous, LONG);
    gone.abort();
    let _ = gone.await;
    assert_eq!(waiting(&a), 1, "only the waiter that stayed is queued");
    drop(held);
    let admitted = stays
        .wait()
        .await
        .expect("the slot reaches the next waiter");
    assert_eq!(in_flight(&a), 1);
    drop(admitted);
    assert_eq!(in_flight(&a), 0);

    // A ticket dropped unused gives its slot back too.
    let unused = a.ticket(Lane::Anonymous, LONG);
    assert_eq!(in_flight(&a), 1);
    drop(unused);
    assert_eq!(in_flight(&a), 0);
}

#[tokio::test]
async fn a_raised_limit_lets_waiters_in_and_a_lowered_one_drains() {
    let a = Admission::new("t", 1, 16);
    let held = a.ticket(Lane::Anonymous, LONG).wait().await.expect("slot");
    let w1 = tokio::spawn(a.ticket(Lane::Anonymous, LONG).wait());
    let w2 = tokio::spawn(a.ticket(Lane::Anonymous, LONG).wait());
    while waiting(&a) < 2 {
        tokio::task::yield_now().await;
    }
    a.configure(3, 16, None);
    let p1 = w1.await.expect("task").expect("admitted");
    let p2 = w2.await.expect("task").expect("admitted");
    assert_eq!(in_flight(&a), 3);
    a.configure(1, 16, None);
    let queued = a.ticket(Lane::Anonymous, LONG);
    assert!(
        !queued.immediate(),
        "over the lowered limit, a newcomer waits"
    );
    drop(p1);
    drop(p2);
    assert_eq!(
        in_flight(&a),
        1,
        "slots above the new limit are not handed on"
    );
    drop(held);
    let last = queued.wait().await.expect("admitted");
    assert_eq!(in_flight(&a), 1);
    drop(last);
    assert_eq!(in_flight(&a), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_limit_at_once_under_churn() {
    let a = Admission::new("t", 3, 1000);
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..300 {
        let ticket = a.ticket(Lane::ALL[i % 4], LONG);
        let (now, most) = (now.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let admitted = ticket.wait().await.expect("admitted");
            let n = now.fetch_add(1, Relaxed) + 1;
            most.fetch_max(n, Relaxed);
            for _ in 0..(i % 5) {
                tokio::task::yield_now().await;
            }
            now.fetch_sub(1, Relaxed);
            drop(admitted);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(most.load(Relaxed) <= 3, "{} at once", most.load(Relaxed));
    assert_eq!(in_flight(&a), 0);
    assert_eq!(waiting(&a), 0);
    let s = a.snapshot();
    assert_eq!(
        s.admitted_at_once.iter().sum::<u64>() + s.admitted_after_wait.iter().sum::<u64>(),
        300
    );
}
