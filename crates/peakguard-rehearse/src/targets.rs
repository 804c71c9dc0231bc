//! What to request: weighted URL paths in named groups, from a list file or discovered from a
//! WordPress sitemap (core's `/wp-sitemap.xml` or Yoast's `/sitemap_index.xml`).

use crate::client::Client;
use http::Method;
use http_body_util::Full;

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub path: String,
    pub weight: f64,
    pub group: String,
}

/// Pages with cumulative weights for weighted random choice.
#[derive(Debug, Clone, Default)]
pub struct Pages {
    pages: Vec<Page>,
    cumulative: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error(
        "{file}:{line}: {reason}. Each line is `PATH [weight=N] [group=NAME]`, e.g. `/shop/ weight=3 group=shop`"
    )]
    Line {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("no URL to request: give --urls FILE or --sitemap")]
    Empty,
    #[error("sitemap discovery on {0}: {1}")]
    Sitemap(String, String),
}

/// The group of a path when none is given: `home` for `/`, the first segment for deeper
/// paths (`/product/x/` → `product`), `page` for one-segment paths.
pub fn default_group(path: &str) -> String {
    let p = path.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    match segs.len() {
        0 => "home".into(),
        1 => "page".into(),
        _ => segs[0].to_string(),
    }
}

impl Pages {
    pub fn new(pages: Vec<Page>) -> Result<Self, TargetsError> {
        let pages: Vec<Page> = pages.into_iter().filter(|p| p.weight > 0.0).collect();
        if pages.is_empty() {
            return Err(TargetsError::Empty);
        }
        let mut sum = 0.0;
        let cumulative = pages
            .iter()
            .map(|p| {
                sum += p.weight;
                sum
            })
            .collect();
        Ok(Pages { pages, cumulative })
    }

    pub fn parse_list(text: &str, file: &str) -> Result<Self, TargetsError> {
        let mut pages = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: String| TargetsError::Line {
                file: file.into(),
                line: i + 1,
                reason,
            };
            let mut words = line.split_whitespace();
            let mut path = words.next().unwrap_or("").to_string();
            if let Ok(u) = url::Url::parse(&path) {
                path = match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                };
            }
            if !path.starts_with('/') {
                return Err(err(format!("{path:?} is not a path or URL")));
            }
            let mut page = Page {
                group: default_group(&path),
                path,
                weight: 1.0,
            };
            for w in words {
                match w.split_once('=') {
                    Some(("weight", v)) => {
                        page.weight = v
                            .parse()
                            .ok()
                            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                            .ok_or_else(|| err(format!("weight {v:?} is not a number")))?
                    }
                    Some(("group", v)) if !v.is_empty() => page.group = v.to_string(),
                    _ => return Err(err(format!("unknown word {w:?}"))),
                }
            }
            pages.push(page);
        }
        Pages::new(pages)
    }

    pub fn load(path: &str) -> Result<Self, TargetsError> {
        let text = std::fs::read_to_string(path).map_err(|e| TargetsError::Read(path.into(), e))?;
        Pages::parse_list(&text, path)
    }

    /// A page chosen by weight; `r` is uniform in [0, 1).
    pub fn pick(&self, r: f64) -> &Page {
        let x = r * self.cumulative.last().copied().unwrap_or(0.0);
        let i = self
            .cumulative
            .partition_point(|c| *c <= x)
            .min(self.pages.len() - 1);
        &self.pages[i]
    }

    pub fn all(&self) -> &[Page] {
        &self.pages
    }
}

/// Every `<loc>` in a sitemap document.
pub fn locs(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut in_loc = false;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => in_loc = e.local_name().as_ref() == b"loc",
            Ok(quick_xml::events::Event::Text(t)) if in_loc => {
                if let Ok(s) = t.decode() {
                    out.push(s.trim().to_string());
                }
            }
            Ok(quick_xml::events::Event::CData(t)) if in_loc => {
                out.push(String::from_utf8_lossy(&t).trim().to_string());
            }
            Ok(quick_xml::events::Event::End(_)) => in_loc = false,
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The group a sub-sitemap's URLs belong to: `wp-sitemap-posts-post-1.xml` → `post`,
/// `wp-sitemap-taxonomies-category-1.xml` → `category`, Yoast's `product-sitemap.xml` →
/// `product`.
pub fn sitemap_group(sitemap_url: &str) -> String {
    let file = sitemap_url
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("");
    let stem = file.trim_end_matches(".xml");
    if let Some(rest) = stem.strip_prefix("wp-sitemap-") {
        let parts: Vec<&str> = rest.split('-').collect();
        // posts-post-1, taxonomies-category-1, users-1
        return match parts.as_slice() {
            ["users", ..] => "author".into(),
            [_, kind, ..] => kind.to_string(),
            _ => rest.to_string(),
        };
    }
    if let Some(kind) = stem
        .strip_suffix("-sitemap")
        .or_else(|| stem.rsplit_once("-sitemap").map(|(k, _)| k))
    {
        return kind.to_string();
    }
    "page".into()
}

fn path_of(loc: &str) -> Option<String> {
    let u = url::Url::parse(loc).ok()?;
    Some(match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    })
}

async fn fetch(client: &Client, path: &str) -> Result<Option<String>, String> {
    let req = client
        .request(Method::GET, path)
        .body(Full::default())
        .map_err(|e| e.to_string())?;
    let reply = client
        .fetch(req)
        .await
        .map_err(|o| format!("GET {path}: {o:?}"))?;
    if reply.status.as_u16() == 404 {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(format!("GET {path}: status {}", reply.status));
    }
    Ok(Some(String::from_utf8_lossy(&reply.body).into_owned()))
}

/// Discovers up to `limit` pages from the site's sitemap (the home page is always included).
/// Sub-sitemaps are fetched from the target whatever host their URLs name (a site moving to a
/// new server still names its public host).
pub async fn discover(client: &Client, limit: usize) -> Result<Pages, TargetsError> {
    let host = client.target().host_header.clone();
    let fail = |e: String| TargetsError::Sitemap(host.clone(), e);
    let mut index = None;
    for candidate in ["/wp-sitemap.xml", "/sitemap_index.xml"] {
        if let Some(text) = fetch(client, candidate).await.map_err(fail)? {
            index = Some(text);
            break;
        }
    }
    let index = index.ok_or_else(|| {
        fail("neither /wp-sitemap.xml nor /sitemap_index.xml exists (404)".into())
    })?;
    let mut pages = vec![Page {
        path: "/".into(),
        weight: 1.0,
        group: "home".into(),
    }];
    for sitemap in locs(&index) {
        if pages.len() >= limit {
            break;
        }
        let group = sitemap_group(&sitemap);
        let Some(path) = path_of(&sitemap) else {
            continue;
        };
        let Some(text) = fetch(client, &path).await.map_err(fail)? else {
            continue;
        };
        for loc in locs(&text) {
            if pages.len() >= limit {
                break;
            }
            if let Some(p) = path_of(&loc).filter(|p| p != "/") {
                pages.push(Page {
                    path: p,
                    weight: 1.0,
                    group: group.clone(),
                });
            }
        }
    }
    Pages::new(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_file_with_weights_and_groups() {
        let text = "# key pages\n/ weight=5 group=home\nhttps://shop.test/product/x/?color=red weight=2\n/about/\n";
        let p = Pages::parse_list(text, "urls.txt").unwrap();
        assert_eq!(p.all().len(), 3);
        assert_eq!(
            p.all()[1],
            Page {
                path: "/product/x/?color=red".into(),
                weight: 2.0,
                group: "product".into()
            }
        );
        assert_eq!(p.all()[2].group, "page");
        assert_eq!(p.pick(0.0).path, "/");
        assert_eq!(p.pick(0.99).path, "/about/");
        assert_eq!(p.pick(0.70).path, "/product/x/?color=red");
        let e = Pages::parse_list("/ weight=x\n", "urls.txt").unwrap_err();
        assert!(e.to_string().contains("urls.txt:1"), "{e}");
    }

    #[test]
    fn sitemap_locs_and_groups() {
        let xml = r#"<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>http://wp.test/wp-sitemap-posts-post-1.xml</loc></sitemap><sitemap><loc><![CDATA[http://wp.test/wp-sitemap-users-1.xml]]></loc></sitemap></sitemapindex>"#;
        assert_eq!(
            locs(xml),
            vec![
                "http://wp.test/wp-sitemap-posts-post-1.xml",
                "http://wp.test/wp-sitemap-users-1.xml"
            ]
        );
        assert_eq!(
            sitemap_group("http://wp.test/wp-sitemap-posts-post-1.xml"),
            "post"
        );
        assert_eq!(
            sitemap_group("http://wp.test/wp-sitemap-posts-page-1.xml"),
            "page"
        );
        assert_eq!(
            sitemap_group("http://wp.test/wp-sitemap-taxonomies-category-1.xml"),
            "category"
        );
        assert_eq!(
            sitemap_group("http://wp.test/wp-sitemap-users-1.xml"),
            "author"
        );
        assert_eq!(
            sitemap_group("https://shop.test/product-sitemap.xml"),
            "product"
        );
        assert_eq!(sitemap_group("https://shop.test/post-sitemap2.xml"), "post");
    }

    #[test]
    fn default_groups() {
        assert_eq!(default_group("/"), "home");
        assert_eq!(default_group("/?s=x"), "home");
        assert_eq!(default_group("/hello-world/"), "page");
        assert_eq!(default_group("/category/news/"), "category");
    }
}
