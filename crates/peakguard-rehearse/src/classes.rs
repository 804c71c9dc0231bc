//! Traffic classes, mixed by weight, each with its own statistics:
//!
//! - `anonymous`: a page chosen by weight;
//! - `campaign`: the same with unique `utm_*` and `gclid` parameters on every request, as ad
//!   clicks arrive;
//! - `shopper`: a visitor with a cookie jar walking product → add-to-cart → cart → checkout,
//!   then starting over as a new visitor;
//! - `logged_in`: users logged in once before the run (credentials from the scenario), whose
//!   cookies go with every request.

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Cookies kept by one simulated visitor.
#[derive(Debug, Clone, Default)]
pub struct CookieJar(BTreeMap<String, String>);

impl CookieJar {
    /// Takes every `Set-Cookie` of a response (an expired or emptied cookie is removed).
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(http::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = v.to_ascii_lowercase().contains("max-age=0")
                || v.contains("1970")
                || value.is_empty()
                || value == "deleted";
            if expired {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn has(&self, prefix: &str) -> bool {
        self.0.keys().any(|k| k.starts_with(prefix))
    }
}

/// A class as the scenario file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub kind: Kind,
    #[serde(default = "one")]
    pub weight: f64,
    /// campaign: parameters added to every click (a unique `gclid` is always added).
    #[serde(default)]
    pub params: Option<String>,
    /// shopper: add-to-cart paths (WooCommerce: `/?add-to-cart=ID`), cart and checkout.
    #[serde(default)]
    pub add_to_cart: Vec<String>,
    #[serde(default)]
    pub cart: Option<String>,
    #[serde(default)]
    pub checkout: Option<String>,
    /// logged_in: credentials, login path and how many users log in.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub login_path: Option<String>,
    #[serde(default)]
    pub sessions: Option<usize>,
    /// Request headers for this class, over the browser's defaults (an empty value removes
    /// one), e.g. `headers = { "Accept-Encoding" = "gzip" }`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Anonymous,
    Campaign,
    Shopper,
    LoggedIn,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Anonymous => "anonymous",
            Kind::Campaign => "campaign",
            Kind::Shopper => "shopper",
            Kind::LoggedIn => "logged_in",
        }
    }
}

impl ClassSpec {
    pub fn simple(kind: Kind, weight: f64) -> Self {
        ClassSpec {
            name: None,
            kind,
            weight,
            params: None,
            add_to_cart: Vec::new(),
            cart: None,
            checkout: None,
            username: None,
            password: None,
            login_path: None,
            sessions: None,
            headers: Default::default(),
        }
    }

    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.label().to_string())
    }

    /// Problems with this class's settings, if any.
    pub fn check(&self) -> Result<(), String> {
        match self.kind {
            Kind::Shopper if self.add_to_cart.is_empty() => Err(format!(
                "class {:?} (shopper) needs add_to_cart paths, e.g. [\"/?add-to-cart=12\"]",
                self.label()
            )),
            Kind::LoggedIn if self.username.is_none() || self.password.is_none() => Err(format!(
                "class {:?} (logged_in) needs username and password",
                self.label()
            )),
            _ if !(self.weight.is_finite() && self.weight >= 0.0) => Err(format!(
                "class {:?}: weight must be a number ≥ 0",
                self.label()
            )),
            _ => Ok(()),
        }
    }
}

/// One request to make, and for which visitor.
#[derive(Debug)]
pub struct Step {
    pub class: usize,
    pub method: Method,
    pub path: String,
    pub group: String,
    pub form: Option<Bytes>,
    pub visitor: Visitor,
    /// In a waiting room since this time (from the start of the run): this step is the
    /// visitor's refresh of the waiting page.
    pub in_room_since: Option<std::time::Duration>,
}

/// Whose cookies go with a step, and where they return afterwards.
#[derive(Debug)]
pub enum Visitor {
    Nobody,
    Shopper {
        jar: CookieJar,
        next_step: u8,
    },
    LoggedIn {
        index: usize,
        jar: CookieJar,
    },
    /// An anonymous visitor holding a place in a waiting room (its cookie).
    Queued {
        jar: CookieJar,
    },
}

impl Visitor {
    pub fn jar(&self) -> Option<&CookieJar> {
        match self {
            Visitor::Nobody => None,
            Visitor::Shopper { jar, .. }
            | Visitor::LoggedIn { jar, .. }
            | Visitor::Queued { jar } => Some(jar),
        }
    }

    pub fn jar_mut(&mut self) -> Option<&mut CookieJar> {
        match self {
            Visitor::Nobody => None,
            Visitor::Shopper { jar, .. }
            | Visitor::LoggedIn { jar, .. }
            | Visitor::Queued { jar } => Some(jar),
        }
    }
}

/// Shoppers between steps, and logged-in users' jars. Bounded: at most `max_shoppers`
/// shoppers wait; more arriving start fresh.
pub struct Visitors {
    shoppers: Mutex<VecDeque<(CookieJar, u8)>>,
    max_shoppers: usize,
    logged_in: Vec<Mutex<CookieJar>>,
}

impl Visitors {
    pub fn new(max_shoppers: usize, logged_in: Vec<CookieJar>) -> Self {
        Visitors {
            shoppers: Mutex::new(VecDeque::new()),
            max_shoppers,
            logged_in: logged_in.into_iter().map(Mutex::new).collect(),
        }
    }

    pub fn next_shopper(&self) -> (CookieJar, u8) {
        self.shoppers
            .lock()
            .ok()
            .and_then(|mut q| q.pop_front())
            .unwrap_or_default()
    }

    /// A visitor's jar after its response.
    pub fn give_back(&self, visitor: Visitor) {
        match visitor {
            Visitor::Nobody | Visitor::Queued { .. } => {}
            Visitor::Shopper { jar, next_step } => {
                if let Ok(mut q) = self.shoppers.lock()
                    && q.len() < self.max_shoppers
                {
                    q.push_back((jar, next_step));
                }
            }
            Visitor::LoggedIn { index, jar } => {
                if let Some(Ok(mut j)) = self.logged_in.get(index).map(|m| m.lock()) {
                    *j = jar;
                }
            }
        }
    }

    pub fn logged_in(&self, n: u64) -> Option<(usize, CookieJar)> {
        if self.logged_in.is_empty() {
            return None;
        }
        let i = (n % self.logged_in.len() as u64) as usize;
        self.logged_in[i].lock().ok().map(|j| (i, j.clone()))
    }
}

/// Adds query parameters to a path.
pub fn with_params(path: &str, params: &str) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    format!(
        "{path}{}{params}",
        if path.contains('?') { '&' } else { '?' }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_keeps_sets_and_forgets_expired_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            "wp_woocommerce_session_x=abc; path=/; HttpOnly"
                .parse()
                .unwrap(),
        );
        h.append(
            http::header::SET_COOKIE,
            "woocommerce_items_in_cart=1; path=/".parse().unwrap(),
        );
        let mut jar = CookieJar::default();
        jar.absorb(&h);
        assert_eq!(
            jar.header().unwrap(),
            "woocommerce_items_in_cart=1; wp_woocommerce_session_x=abc"
        );
        let mut h = HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            "woocommerce_items_in_cart=; expires=Thu, 01 Jan 1970 00:00:00 GMT"
                .parse()
                .unwrap(),
        );
        jar.absorb(&h);
        assert!(!jar.has("woocommerce_items_in_cart"));
        assert!(jar.has("wp_woocommerce_session_"));
    }

    #[test]
    fn params_join_the_query() {
        assert_eq!(with_params("/p/", "utm_source=a"), "/p/?utm_source=a");
        assert_eq!(with_params("/p/?x=1", "gclid=2"), "/p/?x=1&gclid=2");
    }
}
