//! Requests as guards see them, for the shield's unit tests.

use crate::{ClientInfo, RequestFacts};

pub fn client(ip: &str, proto: &str) -> ClientInfo {
    ClientInfo {
        ip: ip.parse().expect("ip"),
        proto: proto.into(),
        forwarded_for: ip.into(),
    }
}

pub struct Req {
    pub client: ClientInfo,
    pub method: http::Method,
    pub path: String,
    pub headers: http::HeaderMap,
    pub tls: bool,
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Req {
            client: client("203.0.113.5", "http"),
            method: http::Method::GET,
            path: path.into(),
            headers: http::HeaderMap::new(),
            tls: false,
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .append(name, http::HeaderValue::from_str(value).expect("value"));
        self
    }

    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            site: "shop",
            client: &self.client,
            method: &self.method,
            host: "shop.test:8080",
            path_and_query: &self.path,
            raw_target: self.path.as_bytes(),
            version: http::Version::HTTP_11,
            headers: &self.headers,
            tls_listener: self.tls,
            body: self.body.as_deref(),
        }
    }
}

impl Req {
    pub fn sent_by(mut self, ip: &str) -> Self {
        self.client = client(ip, "http");
        self
    }
}

impl Req {
    pub fn post(path: &str, body: &str) -> Self {
        let mut r = Req::get(path);
        r.method = http::Method::POST;
        r.body = Some(body.as_bytes().to_vec());
        r
    }
}

/// A configuration read as the binary reads it, with the guards' tables.
pub fn parse(
    text: &str,
    origin: &str,
) -> Result<peakguard_config::Config, peakguard_config::ConfigError> {
    let tables = crate::config_tables();
    let extensions = peakguard_config::Extensions {
        guard_tables: &tables,
        ..Default::default()
    };
    peakguard_config::parse_with(text, origin, &extensions)
}
