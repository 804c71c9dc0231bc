//! What the edge hands over for one finished request, and how it is classified.

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Served {
    /// From the cache, fresh.
    Hit = 0,
    /// From the cache, stale (while revalidating, or because the origin failed).
    Stale = 1,
    /// By the origin (a miss, an expired or revalidated entry, an uncacheable answer).
    Origin = 2,
    /// By the origin, the cache bypassed on purpose (logged-in users, carts, admin).
    Bypass = 3,
    /// By the edge itself (maintenance, refusals, the waiting room, redirects).
    Local = 4,
}

impl Served {
    pub const COUNT: usize = 5;
    pub const ALL: [Served; Self::COUNT] = [
        Served::Hit,
        Served::Stale,
        Served::Origin,
        Served::Bypass,
        Served::Local,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Served::Hit => "hit",
            Served::Stale => "stale",
            Served::Origin => "origin",
            Served::Bypass => "bypass",
            Served::Local => "local",
        }
    }
}

/// The status class of a response (`Other`: none was written, or out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StatusClass {
    Informational = 0,
    Success = 1,
    Redirect = 2,
    ClientError = 3,
    ServerError = 4,
    Other = 5,
}

impl StatusClass {
    pub const COUNT: usize = 6;
    pub const ALL: [StatusClass; Self::COUNT] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirect,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::Other,
    ];

    pub fn of(status: u16) -> StatusClass {
        match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirect,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }

    pub fn label(self) -> &'static str {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "other"][self as usize]
    }
}

/// One finished request. Built by the edge from what it already has; the classification
/// that costs (is it a page? which host referred it?) is done later, off the request path,
/// by [`Event::settle`].
#[derive(Debug, Clone)]
pub struct Event {
    /// The site's name (`""` when no site matched the host).
    pub site: Box<str>,
    pub served: Served,
    pub status: u16,
    pub bytes: u64,
    /// Time to the last byte, clamped to `u32::MAX` µs (71 minutes).
    pub client_micros: u32,
    pub origin_micros: Option<u32>,
    /// The guard that refused the request, if one did.
    pub refused_by: Option<Box<str>>,
    /// The request's path and query as received; `settle` keeps the path of a page view.
    pub page: Option<Box<str>>,
    /// The `Referer` header as received; `settle` keeps the host of another site.
    pub referrer: Option<Box<str>>,
    /// The request's host (to tell a site's own pages from referring sites).
    pub host: Box<str>,
    pub method_is_get: bool,
    /// The client's address and User-Agent: hashed into a visitor id on the statistics'
    /// thread, then dropped (never stored).
    pub client: Option<std::net::IpAddr>,
    pub user_agent: Option<Box<str>>,
    /// The order the response confirmed (the companion plugin's `X-Peakguard-Order` field,
    /// removed by the edge): `id=…; total=…; currency=…`.
    pub order: Option<Box<str>>,
}

/// Paths that are never counted as page views: assets and WordPress's machinery.
const NOT_PAGES: [&str; 5] = [
    "/wp-admin",
    "/wp-json",
    "/wp-content",
    "/wp-includes",
    "/wp-",
];
const ASSET_ENDINGS: [&str; 19] = [
    ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico", ".woff",
    ".woff2", ".ttf", ".map", ".xml", ".txt", ".json", ".mp4", ".pdf",
];
/// A path longer than this is cut (top pages are for reading, not for storing URLs).
const MAX_KEY: usize = 200;

impl Event {
    pub fn clamp_micros(d: std::time::Duration) -> u32 {
        u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
    }

    /// Keeps only what is counted: the path of a page view, the host of another site that
    /// referred the visitor. Returns the request's path and query as received (for its
    /// utm parameters and the goals).
    pub fn settle(&mut self) -> Box<str> {
        let target = self.page.clone().unwrap_or_default();
        self.page = self.page.take().and_then(|p| {
            let path = p.split(['?', '#']).next().unwrap_or("/");
            let is_page = self.method_is_get
                && StatusClass::of(self.status) == StatusClass::Success
                && path.starts_with('/')
                && !NOT_PAGES.iter().any(|n| path.starts_with(n))
                && !ASSET_ENDINGS
                    .iter()
                    .any(|e| path.to_ascii_lowercase().ends_with(e));
            is_page.then(|| cut(path))
        });
        let own = referring_host(&format!("http://{}", self.host));
        self.referrer = self.referrer.take().and_then(|r| {
            let host = referring_host(&r)?;
            (Some(&host) != own.as_ref()).then(|| cut(&host))
        });
        target
    }
}

fn cut(s: &str) -> Box<str> {
    if s.len() <= MAX_KEY {
        return s.into();
    }
    let mut end = MAX_KEY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

/// The host of an absolute `http(s)://` referrer, lowercased, without port or `www.`.
fn referring_host(r: &str) -> Option<String> {
    let rest = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..])?
    } else {
        host.split(':').next()?
    };
    if host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(host.strip_prefix("www.").map(str::to_owned).unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path: &str, status: u16, referrer: Option<&str>) -> Event {
        Event {
            site: "shop".into(),
            served: Served::Hit,
            status,
            bytes: 0,
            client_micros: 0,
            origin_micros: None,
            refused_by: None,
            page: Some(path.into()),
            referrer: referrer.map(Into::into),
            host: "shop.example".into(),
            method_is_get: true,
            client: None,
            user_agent: None,
            order: None,
        }
    }

    #[test]
    fn pages_are_successful_gets_of_documents() {
        let mut e = event("/product/mug/?utm_source=x", 200, None);
        e.settle();
        assert_eq!(e.page.as_deref(), Some("/product/mug/"));
        for (path, status) in [
            ("/wp-content/themes/x/style.css", 200),
            ("/logo.PNG", 200),
            ("/wp-admin/", 200),
            ("/gone/", 404),
        ] {
            let mut e = event(path, status, None);
            e.settle();
            assert_eq!(e.page, None, "{path} {status}");
        }
        let mut e = event(&format!("/{}", "é".repeat(300)), 200, None);
        e.settle();
        assert!(e.page.as_ref().is_some_and(|p| p.len() <= MAX_KEY));
    }

    #[test]
    fn referrers_are_other_sites_hosts() {
        for (r, want) in [
            ("https://www.google.com/search?q=mug", Some("google.com")),
            ("http://user@news.example:8080/a", Some("news.example")),
            ("https://shop.example/cart/", None),
            ("android-app://com.facebook", None),
            ("https:///nohost", None),
        ] {
            let mut e = event("/", 200, Some(r));
            e.settle();
            assert_eq!(e.referrer.as_deref(), want, "{r}");
        }
    }
}
