//! Running a rehearsal: the open-model dispatcher (requests start at their intended times
//! whatever the server does), the concurrency cap with a bounded backlog, the hard bounds, and
//! live progress.

use crate::classes::{ClassSpec, CookieJar, Kind, Step, Visitor, Visitors, with_params};
use crate::client::Client;
use crate::profile::Profile;
use crate::report::Report;
use crate::stats::{Outcome, Recorder, RoomEvent};
use crate::targets::Pages;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Bounds that are always in force.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests in flight at once (open connections for HTTP/1.1).
    pub concurrency: usize,
    /// Requests waiting for a free slot before further ones are counted as not sent.
    pub backlog: usize,
    /// Total requests at most.
    pub max_requests: u64,
    /// Per request.
    pub timeout: Duration,
}

pub struct Plan {
    pub client: Arc<Client>,
    pub profile: Profile,
    pub profile_text: String,
    pub pages: Pages,
    pub classes: Vec<ClassSpec>,
    pub limits: Limits,
    /// Send no browser headers (only the classes' own).
    pub raw: bool,
    /// Also report each class from this time on (the cache warm).
    pub warm_after: Option<Duration>,
}

/// What the live progress line shows.
#[derive(Debug, Clone)]
pub struct Progress {
    pub elapsed: Duration,
    pub total: Duration,
    pub target_rate: f64,
    pub rate: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub in_flight: usize,
    pub waiting: usize,
    /// Visitors between two refreshes of a waiting page.
    pub in_room: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Class(String),
    #[error("log in as {user:?} at {path}: {reason} (check the scenario's username/password)")]
    Login {
        user: String,
        path: String,
        reason: String,
    },
}

/// Logs one user in (WordPress's wp-login.php form); returns the session's cookies.
pub async fn login(
    client: &Client,
    path: &str,
    user: &str,
    password: &str,
) -> Result<CookieJar, RunError> {
    let fail = |reason: String| RunError::Login {
        user: user.into(),
        path: path.into(),
        reason,
    };
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("log", user)
        .append_pair("pwd", password)
        .append_pair("wp-submit", "Log In")
        .append_pair("testcookie", "1")
        .finish();
    let req = client
        .request(Method::POST, path)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(
            http::header::COOKIE,
            "wordpress_test_cookie=WP%20Cookie%20check",
        )
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| fail(e.to_string()))?;
    let reply = client.send(req).await.map_err(|o| fail(format!("{o:?}")))?;
    let mut jar = CookieJar::default();
    jar.absorb(&reply.headers);
    if !jar.has("wordpress_logged_in_") {
        return Err(fail(format!(
            "answered {} without a logged-in cookie (wrong password?)",
            reply.status
        )));
    }
    Ok(jar)
}

struct Shared {
    client: Arc<Client>,
    recorder: Mutex<Recorder>,
    start: Instant,
    /// Each class's label, computed once.
    labels: Vec<String>,
    /// Each class's request headers (browser-like unless raw), built once.
    headers: Vec<Vec<(http::HeaderName, http::HeaderValue)>>,
    visitors: Vec<Visitors>,
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    sent: AtomicU64,
    /// No request starts after this: the profile's duration plus one request timeout.
    deadline: Instant,
    /// Queued requests dropped at the deadline.
    late: AtomicU64,
    queue: Arc<Mutex<JobQueue>>,
    ready: Arc<Semaphore>,
    /// Visitors between two refreshes of a waiting page (at most `backlog`; more leave the
    /// line and are counted as unfinished).
    in_room: AtomicUsize,
    room_bound: usize,
    /// The workers are stopping: a refresh due now is not sent.
    closing: AtomicBool,
}

impl Shared {
    fn enqueue(&self, step: Step, intended: Duration) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(Some((step, intended)));
        }
        self.ready.add_permits(1);
    }
}

fn choose_step(
    plan_pages: &Pages,
    classes: &[ClassSpec],
    visitors: &[Visitors],
    cumulative: &[f64],
    n: u64,
    rng: &mut fastrand::Rng,
) -> Step {
    let x = rng.f64() * cumulative.last().copied().unwrap_or(1.0);
    let ci = cumulative
        .partition_point(|c| *c <= x)
        .min(classes.len() - 1);
    let class = &classes[ci];
    let page = plan_pages.pick(rng.f64());
    let get = |path: String, group: String, visitor: Visitor| Step {
        class: ci,
        method: Method::GET,
        path,
        group,
        form: None,
        visitor,
        in_room_since: None,
    };
    match class.kind {
        Kind::Anonymous => get(page.path.clone(), page.group.clone(), Visitor::Nobody),
        Kind::Campaign => {
            let base = class
                .params
                .clone()
                .unwrap_or_else(|| "utm_source=rehearse&utm_medium=cpc&utm_campaign=peak".into());
            let params = format!("{base}&utm_content={n}&gclid=pg{n:x}{:x}", rng.u64(..));
            get(
                with_params(&page.path, &params),
                page.group.clone(),
                Visitor::Nobody,
            )
        }
        Kind::Shopper => {
            let (jar, step) = visitors[ci].next_shopper();
            let (path, group) = match step {
                0 => (page.path.clone(), page.group.clone()),
                1 => (
                    class.add_to_cart[rng.usize(..class.add_to_cart.len())].clone(),
                    "add-to-cart".into(),
                ),
                2 => (
                    class.cart.clone().unwrap_or_else(|| "/cart/".into()),
                    "cart".into(),
                ),
                _ => (
                    class
                        .checkout
                        .clone()
                        .unwrap_or_else(|| "/checkout/".into()),
                    "checkout".into(),
                ),
            };
            let next_step = if step >= 3 { 0 } else { step + 1 };
            get(path, group, Visitor::Shopper { jar, next_step })
        }
        Kind::LoggedIn => match visitors[ci].logged_in(n) {
            Some((index, jar)) => get(
                page.path.clone(),
                page.group.clone(),
                Visitor::LoggedIn { index, jar },
            ),
            None => get(page.path.clone(), page.group.clone(), Visitor::Nobody),
        },
    }
}

async fn execute(shared: Arc<Shared>, step: Step, intended: Duration) {
    let jar = step.visitor.jar().and_then(CookieJar::header);
    let mut b = shared.client.request(step.method.clone(), &step.path);
    if let Some(h) = b.headers_mut() {
        for (k, v) in &shared.headers[step.class] {
            h.insert(k.clone(), v.clone());
        }
    }
    if let Some(cookie) = jar {
        b = b.header(http::header::COOKIE, cookie);
    }
    let body = step.form.clone().unwrap_or_default();
    shared.sent.fetch_add(1, Ordering::Relaxed);
    let result = match b.body(Full::new(body)) {
        Ok(req) => shared.client.send(req).await,
        Err(_) => Err(Outcome::IoError),
    };
    let done = shared.start.elapsed();
    let (outcome, bytes, headers) = match result {
        Ok(r) => (
            Outcome::Status(r.status.as_u16()),
            r.body_len,
            Some(r.headers),
        ),
        Err(o) => (o, 0, None),
    };
    let class = &shared.labels[step.class];
    let refresh = match (&outcome, &headers) {
        (Outcome::Status(s), Some(h)) => crate::room::refresh_after(*s, h),
        _ => None,
    };
    if let (Some(after), Some(h)) = (refresh, &headers) {
        return wait_in_room(shared, step, h, intended, after);
    }
    if let Ok(mut rec) = shared.recorder.lock() {
        rec.record(&step.group, class, outcome, intended, done, bytes);
        if let Some(since) = step.in_room_since {
            rec.room(
                &step.group,
                class,
                RoomEvent::LetIn {
                    waited: intended.saturating_sub(since),
                },
            );
        }
    }
    let mut visitor = step.visitor;
    match (&headers, &mut visitor) {
        // After checkout the visitor leaves; the next shopper starts with an empty jar.
        (_, Visitor::Shopper { jar, next_step: 0 }) => *jar = CookieJar::default(),
        (Some(h), Visitor::Shopper { jar, .. } | Visitor::LoggedIn { jar, .. }) => jar.absorb(h),
        _ => {}
    }
    shared.visitors[step.class].give_back(visitor);
}

/// A waiting page: the visitor keeps its place (the page's cookie) and asks again after
/// `after`, unless the run is over by then.
fn wait_in_room(
    shared: Arc<Shared>,
    mut step: Step,
    headers: &http::HeaderMap,
    intended: Duration,
    after: Duration,
) {
    let class = &shared.labels[step.class];
    let since = *step.in_room_since.get_or_insert(intended);
    step.visitor = match step.visitor {
        Visitor::Nobody => Visitor::Queued {
            jar: CookieJar::default(),
        },
        v => v,
    };
    if let Some(jar) = step.visitor.jar_mut() {
        jar.absorb(headers);
    }
    let due = Instant::now() + after;
    let in_line = shared.in_room.fetch_add(1, Ordering::Relaxed);
    let stays = due < shared.deadline && in_line < shared.room_bound;
    if let Ok(mut rec) = shared.recorder.lock() {
        rec.room(
            &step.group,
            class,
            RoomEvent::Page {
                first: since == intended,
            },
        );
        if !stays {
            rec.room(&step.group, class, RoomEvent::Unfinished);
        }
    }
    if !stays {
        shared.in_room.fetch_sub(1, Ordering::Relaxed);
        shared.visitors[step.class].give_back(step.visitor);
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep_until(due.into()).await;
        shared.in_room.fetch_sub(1, Ordering::Relaxed);
        if shared.closing.load(Ordering::Relaxed) {
            if let Ok(mut rec) = shared.recorder.lock() {
                rec.room(
                    &step.group,
                    &shared.labels[step.class],
                    RoomEvent::Unfinished,
                );
            }
            return;
        }
        let intended = due.saturating_duration_since(shared.start);
        shared.enqueue(step, intended);
    });
}

/// The timer has millisecond granularity and fires late by up to about a millisecond, which
/// would add to every measured latency: sleep on it until shortly before the due time, then
/// yield to the other tasks (responses being read) until the time has come.
async fn wait_until(due: Instant) {
    const SPIN: Duration = Duration::from_micros(2_500);
    if let Some(ahead) = due.checked_duration_since(Instant::now()) {
        if ahead > SPIN {
            tokio::time::sleep_until((due - SPIN).into()).await;
        }
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
    }
}

/// Jobs for the workers: a step and its intended send time; `None` tells a worker to stop.
type JobQueue = VecDeque<Option<(Step, Duration)>>;

/// Runs the plan. `progress` is called about once a second.
pub async fn run(
    plan: Plan,
    progress: Arc<dyn Fn(&Progress) + Send + Sync>,
) -> Result<Report, RunError> {
    let mut headers = Vec::with_capacity(plan.classes.len());
    for c in &plan.classes {
        c.check().map_err(RunError::Class)?;
        headers.push(
            crate::browser::class_headers(plan.raw, &c.headers)
                .map_err(|e| RunError::Class(format!("class {:?}: {e}", c.label())))?,
        );
    }
    // Log in the logged-in users before the clock starts.
    let mut visitors = Vec::new();
    for c in &plan.classes {
        let mut jars = Vec::new();
        if c.kind == Kind::LoggedIn {
            let (user, pass) = (
                c.username.clone().unwrap_or_default(),
                c.password.clone().unwrap_or_default(),
            );
            let path = c
                .login_path
                .clone()
                .unwrap_or_else(|| "/wp-login.php".into());
            for _ in 0..c.sessions.unwrap_or(3).max(1) {
                jars.push(login(&plan.client, &path, &user, &pass).await?);
            }
        }
        visitors.push(Visitors::new(plan.limits.concurrency, jars));
    }
    let mut sum = 0.0;
    let cumulative: Vec<f64> = plan
        .classes
        .iter()
        .map(|c| {
            sum += c.weight;
            sum
        })
        .collect();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let shared = Arc::new(Shared {
        client: plan.client.clone(),
        recorder: Mutex::new(Recorder::warm_after(plan.warm_after)),
        start: Instant::now(),
        labels: plan.classes.iter().map(ClassSpec::label).collect(),
        headers,
        visitors,
        in_flight: AtomicUsize::new(0),
        waiting: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        deadline: Instant::now() + plan.profile.duration() + plan.limits.timeout,
        late: AtomicU64::new(0),
        // A fixed pool of workers (one per allowed request in flight) takes jobs from a FIFO
        // queue: a waiting request costs a queue entry, not a task.
        queue: Arc::new(Mutex::new(VecDeque::new())),
        ready: Arc::new(Semaphore::new(0)),
        in_room: AtomicUsize::new(0),
        room_bound: plan.limits.backlog.max(1),
        closing: AtomicBool::new(false),
    });
    let (queue, ready) = (shared.queue.clone(), shared.ready.clone());
    let workers = plan.limits.concurrency.max(1);
    let total = plan.profile.duration();
    let ticker = {
        let (shared, profile) = (shared.clone(), plan.profile.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let elapsed = shared.start.elapsed();
                let (rate, p99_ms, errors) = shared
                    .recorder
                    .lock()
                    .map(|r| r.recent(elapsed))
                    .unwrap_or_default();
                progress(&Progress {
                    elapsed,
                    total,
                    target_rate: profile.rate_at(elapsed),
                    rate,
                    p99_ms,
                    errors,
                    in_flight: shared.in_flight.load(Ordering::Relaxed),
                    waiting: shared.waiting.load(Ordering::Relaxed),
                    in_room: shared.in_room.load(Ordering::Relaxed),
                });
            }
        })
    };
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (shared, queue, ready) = (shared.clone(), queue.clone(), ready.clone());
        tasks.spawn(async move {
            loop {
                match ready.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
                let job = queue.lock().ok().and_then(|mut q| q.pop_front()).flatten();
                let Some((step, offset)) = job else { return };
                if Instant::now() > shared.deadline {
                    // Past the hard bound: a request that never started is not sent.
                    shared.waiting.fetch_sub(1, Ordering::Relaxed);
                    shared.late.fetch_add(1, Ordering::Relaxed);
                    shared.visitors[step.class].give_back(step.visitor);
                    continue;
                }
                shared.waiting.fetch_sub(1, Ordering::Relaxed);
                shared.in_flight.fetch_add(1, Ordering::Relaxed);
                execute(shared.clone(), step, offset).await;
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
    let mut scheduled = 0u64;
    let mut scheduled_per_second: Vec<u64> = Vec::new();
    let mut not_sent = 0u64;
    for (n, offset) in plan.profile.schedule().enumerate() {
        let n = n as u64;
        if n >= plan.limits.max_requests {
            break;
        }
        wait_until(shared.start + offset).await;
        scheduled += 1;
        // Counted here and merged at the end: no lock per scheduled request (an overloaded
        // run schedules far more than it sends, on the same core that reads responses).
        let second = offset.as_secs() as usize;
        if scheduled_per_second.len() <= second {
            scheduled_per_second.resize(second + 1, 0);
        }
        scheduled_per_second[second] += 1;
        if shared.waiting.load(Ordering::Relaxed) >= plan.limits.backlog {
            not_sent += 1;
            continue;
        }
        let step = choose_step(
            &plan.pages,
            &plan.classes,
            &shared.visitors,
            &cumulative,
            n,
            &mut rng,
        );
        shared.enqueue(step, offset);
    }
    // Visitors in a waiting room come back until the deadline, and any answer still to come
    // may send one there: wait until nothing is in line, queued or in flight. Refreshes are
    // only planned before the deadline and requests end by their timeout, so this ends by
    // the deadline plus one timeout.
    let quiet_by = shared.deadline + plan.limits.timeout;
    while (shared.in_room.load(Ordering::Relaxed) > 0
        || shared.in_flight.load(Ordering::Relaxed) > 0
        || shared.waiting.load(Ordering::Relaxed) > 0)
        && Instant::now() < quiet_by
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.closing.store(true, Ordering::Relaxed);
    // One stop marker per worker, queued behind the remaining jobs: every waiting request is
    // still sent (the backlog bounds them), requests in flight end by their own timeout.
    if let Ok(mut q) = queue.lock() {
        q.extend((0..workers).map(|_| None));
    }
    ready.add_permits(workers);
    while tasks.join_next().await.is_some() {}
    ticker.abort();
    let duration = shared.start.elapsed();
    let late = shared.late.load(Ordering::Relaxed);
    let mut rec = match Arc::try_unwrap(shared) {
        Ok(s) => s.recorder.into_inner().unwrap_or_default(),
        Err(s) => s
            .recorder
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default(),
    };
    rec.not_sent = not_sent + late;
    rec.add_scheduled(&scheduled_per_second);
    let total_summary = rec.total.summary();
    Ok(Report {
        tool: "peakguard rehearse".into(),
        format: 1,
        target: plan.client.target().base.to_string(),
        started_at,
        profile: plan.profile_text,
        duration_s: duration.as_secs_f64(),
        concurrency: plan.limits.concurrency,
        scheduled,
        sent: total_summary.requests,
        not_sent: rec.not_sent,
        achieved_rps: total_summary.requests as f64 / duration.as_secs_f64().max(1e-9),
        connections_opened: plan.client.connections_opened.load(Ordering::Relaxed),
        total: total_summary,
        groups: rec
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), v.summary()))
            .collect(),
        classes: rec
            .classes
            .iter()
            .map(|(k, v)| (k.clone(), v.summary()))
            .collect(),
        warm_after_s: plan.warm_after.map(|w| w.as_secs_f64()),
        warm_classes: rec
            .warm_classes
            .iter()
            .map(|(k, v)| (k.clone(), v.summary()))
            .collect(),
        series: rec.series(),
    })
}
