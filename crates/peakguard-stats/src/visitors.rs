//! Visitors without cookies or scripts, as cookie-less analytics count them: a visitor is a
//! keyed hash (HMAC-SHA256) of the client's address, its User-Agent and the site, under a
//! salt drawn at random each UTC day. The address is never written anywhere; the salt is
//! kept (0600) only so a restart the same day recognises the same visitors, and is
//! overwritten in place when the day changes: yesterday's visitors cannot be linked to
//! today's, nor recovered from their hashes.
//!
//! A visitor arriving with `utm_source`/`utm_medium`/`utm_campaign`, or from a known search
//! engine, social network or newsletter, is attributed to that source for the rest of the day.

use crate::store::{Result, StatsError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Visitors remembered for the day, all sites together; past it, a visitor not yet seen
/// today counts as new each time (over-counted, never under-counted), and says so once.
pub const MAX_VISITORS_PER_DAY: usize = 500_000;
const DAY: i64 = 86_400;

/// Where a visitor came from: `source / medium / campaign` (each may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribution(pub Arc<str>);

impl Attribution {
    pub fn key(&self) -> &str {
        &self.0
    }
}

/// What is known of one visitor today.
#[derive(Debug, Default, Clone)]
struct Seen {
    attribution: Option<Attribution>,
}

pub struct Visitors {
    salt_file: PathBuf,
    day: i64,
    salt: [u8; 32],
    today: HashMap<(Arc<str>, u64), Seen>,
    full_said: bool,
}

/// One visit, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub id: u64,
    /// First request of this visitor today.
    pub new_today: bool,
    /// The visitor's attribution changed with this request (a newly attributed visit).
    pub attributed_now: bool,
    pub attribution: Option<Attribution>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StatsError + '_ {
    move |source| StatsError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Visitors {
    /// Reads today's salt from `dir/salt`, or draws one (and overwrites a past day's).
    pub fn open(dir: &Path, now: i64) -> Result<Visitors> {
        let salt_file = dir.join("salt");
        let mut v = Visitors {
            salt_file,
            day: now.div_euclid(DAY),
            salt: [0; 32],
            today: HashMap::new(),
            full_said: false,
        };
        match v.read_salt()? {
            Some((day, salt)) if day == v.day => v.salt = salt,
            _ => v.new_salt()?,
        }
        Ok(v)
    }

    fn read_salt(&self) -> Result<Option<(i64, [u8; 32])>> {
        let mut f = match std::fs::File::open(&self.salt_file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&self.salt_file)(e)),
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(io(&self.salt_file))?;
        let (Some(day), Some(salt)) = (bytes.get(..8), bytes.get(8..40)) else {
            return Ok(None);
        };
        let day = i64::from_le_bytes(day.try_into().unwrap_or_default());
        let mut key = [0; 32];
        key.copy_from_slice(salt);
        Ok(Some((day, key)))
    }

    /// Draws today's salt and writes it over the file's previous bytes (same file, same
    /// place: the past day's salt is not left in a renamed-away copy).
    fn new_salt(&mut self) -> Result<()> {
        use rand::RngCore;
        rand::rngs::OsRng.fill_bytes(&mut self.salt);
        let mut bytes = Vec::with_capacity(40);
        bytes.extend_from_slice(&self.day.to_le_bytes());
        bytes.extend_from_slice(&self.salt);
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.salt_file)
            .map_err(io(&self.salt_file))?;
        f.write_all(&bytes).map_err(io(&self.salt_file))?;
        f.set_len(bytes.len() as u64).map_err(io(&self.salt_file))?;
        f.sync_all().map_err(io(&self.salt_file))?;
        self.today.clear();
        self.full_said = false;
        Ok(())
    }

    /// Counts a request of `site` from `client` with `user_agent` at `now`; `attribution` is
    /// what this request says of its source (utm parameters or a known referrer), if any.
    pub fn visit(
        &mut self,
        now: i64,
        site: &str,
        client: IpAddr,
        user_agent: &str,
        attribution: Option<Attribution>,
    ) -> Visit {
        let day = now.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            if let Err(e) = self.new_salt() {
                log::error!("statistics: cannot write today's visitor salt: {e}");
            }
        }
        let id = self.id(site, client, user_agent);
        let full = self.today.len() >= MAX_VISITORS_PER_DAY;
        let key = (Arc::<str>::from(site), id);
        let (new_today, seen) = match self.today.get_mut(&key) {
            Some(seen) => (false, Some(seen)),
            None if full => {
                if !self.full_said {
                    log::warn!(
                        "statistics: {MAX_VISITORS_PER_DAY} visitors today; further new visitors are counted without being remembered"
                    );
                    self.full_said = true;
                }
                (true, None)
            }
            None => (true, Some(self.today.entry(key).or_default())),
        };
        let Some(seen) = seen else {
            return Visit {
                id,
                new_today,
                attributed_now: attribution.is_some(),
                attribution,
            };
        };
        let attributed_now = attribution.is_some() && attribution != seen.attribution;
        if attributed_now {
            seen.attribution = attribution;
        }
        Visit {
            id,
            new_today,
            attributed_now,
            attribution: seen.attribution.clone(),
        }
    }

    fn id(&self, site: &str, client: IpAddr, user_agent: &str) -> u64 {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.salt) else {
            return 0;
        };
        match client {
            IpAddr::V4(a) => mac.update(&a.octets()),
            IpAddr::V6(a) => mac.update(&a.octets()),
        }
        mac.update(&[0]);
        mac.update(user_agent.as_bytes());
        mac.update(&[0]);
        mac.update(site.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_le_bytes(first)
    }
}

/// Referring hosts that name a source without utm parameters: (host suffix, medium).
const KNOWN_REFERRERS: [(&str, &str); 16] = [
    ("google.", "organic"),
    ("bing.com", "organic"),
    ("duckduckgo.com", "organic"),
    ("ecosia.org", "organic"),
    ("qwant.com", "organic"),
    ("yahoo.com", "organic"),
    ("facebook.com", "social"),
    ("instagram.com", "social"),
    ("t.co", "social"),
    ("x.com", "social"),
    ("linkedin.com", "social"),
    ("pinterest.com", "social"),
    ("tiktok.com", "social"),
    ("youtube.com", "social"),
    ("mail.google.com", "email"),
    ("outlook.live.com", "email"),
];

/// The longest utm value kept (longer ones are cut).
const MAX_UTM: usize = 60;

/// What a request says of its source: its `utm_*` parameters, else a known referring host.
pub fn attribution_of(path_and_query: &str, referrer_host: Option<&str>) -> Option<Attribution> {
    let query = path_and_query.split_once('?').map(|(_, q)| q);
    let (mut source, mut medium, mut campaign) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v: String = v
            .trim()
            .chars()
            .filter(|c| !c.is_control() && *c != '/')
            .take(MAX_UTM)
            .collect::<String>()
            .to_lowercase();
        match &*k {
            "utm_source" => source = Some(v),
            "utm_medium" => medium = Some(v),
            "utm_campaign" => campaign = Some(v),
            _ => {}
        }
    }
    if source.is_some() || medium.is_some() || campaign.is_some() {
        return Some(Attribution(
            format!(
                "{} / {} / {}",
                source.unwrap_or_default(),
                medium.unwrap_or_default(),
                campaign.unwrap_or_default()
            )
            .into(),
        ));
    }
    let host = referrer_host?;
    let (_, medium) = KNOWN_REFERRERS
        .iter()
        .filter(|(h, _)| {
            if h.ends_with('.') {
                host.starts_with(h) || host.contains(&format!(".{h}"))
            } else {
                host == *h || host.ends_with(&format!(".{h}"))
            }
        })
        .max_by_key(|(h, _)| h.len())?;
    Some(Attribution(format!("{host} / {medium} / ").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_637_600;

    #[test]
    fn the_same_visitor_is_the_same_today_and_unlinkable_tomorrow() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let mut v = Visitors::open(dir.path(), T0).unwrap();
        let a = v.visit(T0, "shop", ip, "Firefox", None);
        assert!(a.new_today);
        let b = v.visit(T0 + 60, "shop", ip, "Firefox", None);
        assert_eq!((b.id, b.new_today), (a.id, false));
        assert_ne!(v.visit(T0, "shop", ip, "Chrome", None).id, a.id);
        assert_ne!(v.visit(T0, "blog", ip, "Firefox", None).id, a.id);
        // A restart the same day knows the visitor; the salt file is private.
        let salt_before = std::fs::read(dir.path().join("salt")).unwrap();
        let mut again = Visitors::open(dir.path(), T0 + 3600).unwrap();
        assert_eq!(again.visit(T0 + 3600, "shop", ip, "Firefox", None).id, a.id);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("salt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The next day: a new salt over the old one, a new id, the address nowhere.
        let next = again.visit(T0 + DAY, "shop", ip, "Firefox", None);
        assert!(next.new_today);
        assert_ne!(next.id, a.id);
        let salt_after = std::fs::read(dir.path().join("salt")).unwrap();
        assert_eq!(salt_after.len(), 40);
        assert_ne!(salt_after[8..], salt_before[8..]);
        assert!(!salt_after.windows(4).any(|w| w == [203, 0, 113, 9]));
    }

    #[test]
    fn a_visitor_keeps_its_source_for_the_day() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "::1".parse().unwrap();
        let mut v = Visitors::open(dir.path(), T0).unwrap();
        let utm = attribution_of(
            "/sale/?utm_source=Newsletter&utm_medium=email&utm_campaign=black-friday",
            None,
        );
        assert_eq!(
            utm.as_ref().map(Attribution::key),
            Some("newsletter / email / black-friday")
        );
        let first = v.visit(T0, "shop", ip, "UA", utm.clone());
        assert!(first.attributed_now);
        let later = v.visit(T0 + 600, "shop", ip, "UA", None);
        assert!(!later.attributed_now);
        assert_eq!(later.attribution, utm);
    }

    #[test]
    fn known_referrers_are_sources() {
        for (host, want) in [
            ("google.com", Some("google.com / organic / ")),
            ("google.co.uk", Some("google.co.uk / organic / ")),
            ("m.facebook.com", Some("m.facebook.com / social / ")),
            ("mail.google.com", Some("mail.google.com / email / ")),
            ("partner-blog.example", None),
        ] {
            assert_eq!(
                attribution_of("/", Some(host))
                    .as_ref()
                    .map(Attribution::key),
                want,
                "{host}"
            );
        }
    }
}
