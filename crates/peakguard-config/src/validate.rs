//! Checks that go beyond types: addresses, URLs, host uniqueness, TLS pairs.
//! Returns `(key path, message)`; the caller adds line numbers.

use crate::backup::BackupConfig;
use crate::schema::{Config, Profile, SiteConfig};
use std::collections::HashMap;
use std::net::SocketAddr;

pub fn validate(config: &Config, extensions: &crate::Extensions<'_>) -> Vec<(String, String)> {
    let probe_kinds = extensions.probe_kinds;
    let mut problems = Vec::new();
    let mut names = HashMap::new();
    for (i, probe) in config.probes.iter().enumerate() {
        crate::monitor::validate_probe(i, probe, probe_kinds, &mut problems);
        if let Some(first) = names.insert(probe.name.as_str(), i) {
            problems.push((
                format!("probe[{i}].name"),
                format!("{:?} is already the name of probe[{first}]", probe.name),
            ));
        }
    }
    crate::alerts::validate_alerts(
        config,
        probe_kinds,
        extensions.notifier_kinds,
        &mut problems,
    );
    let stats = &config.stats;
    if stats.keep_minutes.0 < std::time::Duration::from_secs(3600) {
        problems.push((
            "stats.keep_minutes".into(),
            "keep minutes at least \"1h\" (the default is \"14d\")".into(),
        ));
    }
    if stats.keep_hours.0 < stats.keep_minutes.0 {
        problems.push((
            "stats.keep_hours".into(),
            "keep hours at least as long as minutes (the default is \"400d\")".into(),
        ));
    }
    if !(1..=60).contains(&stats.save_every.0.as_secs()) {
        problems.push((
            "stats.save_every".into(),
            "between \"1s\" and \"1m\" (what a crash may lose; the default is \"10s\")".into(),
        ));
    }
    for (i, goal) in stats.goals.iter().enumerate() {
        if !goal.starts_with('/') {
            problems.push((
                format!("stats.goals[{i}]"),
                format!("{goal:?}: a path starting with /, e.g. \"/checkout/order-received/\""),
            ));
        }
    }
    let mut campaign_names = HashMap::new();
    for (i, c) in config.campaigns.iter().enumerate() {
        let key = |k: &str| format!("campaign[{i}].{k}");
        if c.name.trim().is_empty() {
            problems.push((key("name"), "a campaign needs a name".into()));
        } else if let Some(first) = campaign_names.insert(c.name.as_str(), i) {
            problems.push((
                key("name"),
                format!("{:?} is already the name of campaign[{first}]", c.name),
            ));
        }
        if let Err(e) = c.window() {
            let which = if e.starts_with("start") {
                "start"
            } else {
                "end"
            };
            problems.push((key(which), e));
        }
        if c.utm_source.is_empty() && c.utm_medium.is_empty() && c.utm_campaign.is_empty() {
            problems.push((
                key("utm_campaign"),
                "say which visits are the campaign's: utm_campaign, utm_source or utm_medium"
                    .into(),
            ));
        }
        if c.cost
            .is_some_and(|v| !v.is_finite() || !(0.0..=1e10).contains(&v))
        {
            problems.push((key("cost"), "a cost between 0 and 10,000,000,000".into()));
        }
        if !(c.currency.is_empty()
            || (c.currency.len() == 3 && c.currency.chars().all(|ch| ch.is_ascii_alphabetic())))
        {
            problems.push((
                key("currency"),
                format!("{:?}: three letters (ISO 4217), e.g. \"EUR\"", c.currency),
            ));
        }
    }
    let mut token_names = HashMap::new();
    for (i, t) in config.admin.tokens.iter().enumerate() {
        let key = |k: &str| format!("admin.tokens[{i}].{k}");
        if t.name.trim().is_empty() {
            problems.push((
                key("name"),
                "a token needs a name (it is logged with each call)".into(),
            ));
        }
        if token_names.insert(t.name.as_str(), i).is_some() {
            problems.push((key("name"), format!("{:?} names two tokens", t.name)));
        }
        match (t.token.is_empty(), &t.token_file) {
            (true, None) => problems.push((
                key("token"),
                "give `token` (at least 16 characters) or `token_file`".into(),
            )),
            (false, Some(_)) => problems.push((
                key("token_file"),
                "give `token` or `token_file`, not both".into(),
            )),
            (false, None) if t.token.expose().len() < 16 => problems.push((
                key("token"),
                "at least 16 characters: it guards the admin API".into(),
            )),
            _ => {}
        }
        if t.permissions.is_empty() {
            problems.push((
                key("permissions"),
                "say what it may do: [\"purge\"], [\"maintenance\"], [\"read\"] or [\"all\"]"
                    .into(),
            ));
        }
    }
    let mut p = |key: String, msg: String| problems.push((key, msg));

    if config.server.listen.is_empty() && config.server.tls_listen.is_empty() {
        p(
            "server.listen".into(),
            "no listener: give at least one address such as \"0.0.0.0:8080\"".into(),
        );
    }
    for (i, addr) in config.server.listen.iter().enumerate() {
        if let Err(m) = socket_addr(addr) {
            p(format!("server.listen[{i}]"), m);
        }
    }
    for (i, addr) in config.server.tls_listen.iter().enumerate() {
        if let Err(m) = socket_addr(addr) {
            p(format!("server.tls_listen[{i}]"), m);
        }
    }
    if !config.server.tls_listen.is_empty() && !config.sites.iter().any(|s| s.tls_cert.is_some()) {
        p(
            "server.tls_listen".into(),
            "TLS listeners need at least one site with `tls_cert` and `tls_key`".into(),
        );
    }
    match socket_addr(&config.admin.listen) {
        Err(m) => p("admin.listen".into(), m),
        Ok(a) if !a.ip().is_loopback() && !config.admin.allow_remote => p(
            "admin.listen".into(),
            format!(
                "{:?} is reachable from other machines: the admin API purges, switches maintenance and reads metrics. Keep it on loopback (\"127.0.0.1:9080\"), or set admin.allow_remote = true and put TLS and a firewall in front",
                config.admin.listen
            ),
        ),
        Ok(_) => {}
    }
    let cookie = &config.maintenance.bypass_cookie;
    if !cookie.is_empty()
        && (!cookie.contains('=') || cookie.starts_with('=') || cookie.ends_with('='))
    {
        p(
            "maintenance.bypass_cookie".into(),
            format!("{cookie:?} must be `name=value` (both non-empty)"),
        );
    }
    if !(1_000..=100_000_000).contains(&config.shield.store_entries) {
        p(
            "shield.store_entries".into(),
            format!(
                "{} entries is out of range: use 1000 to 100000000",
                config.shield.store_entries
            ),
        );
    }
    if config.cache.memory_size.0 < 1 << 20 {
        p(
            "cache.memory_size".into(),
            "the memory tier needs at least 1MiB".into(),
        );
    }

    for (key, size) in [
        ("server.write_buffer", config.server.write_buffer.0),
        ("server.read_buffer", config.server.read_buffer.0),
    ] {
        if size > 16 << 20 {
            p(
                key.into(),
                format!(
                    "{size} bytes per connection is too much: use at most 16MiB (0 = unbuffered)"
                ),
            );
        }
    }
    let s = &config.server;
    if !(1024..=(1 << 20)).contains(&s.max_request_header_size.0) {
        p(
            "server.max_request_header_size".into(),
            format!(
                "{} bytes is out of range: use 1KiB to 1MiB (Pingora reads at most 1MiB)",
                s.max_request_header_size.0
            ),
        );
    }
    if !(8..=256).contains(&s.max_request_headers) {
        p(
            "server.max_request_headers".into(),
            format!(
                "{} is out of range: use 8 to 256 (Pingora reads at most 256)",
                s.max_request_headers
            ),
        );
    }
    let t = s.client_timeout.0.as_secs();
    if !(1..=600).contains(&t) {
        p(
            "server.client_timeout".into(),
            format!("{t}s is out of range: use 1s to 10m"),
        );
    }
    let c = &config.cache.compression;
    if !(1..=9).contains(&c.gzip_level) {
        p(
            "cache.compression.gzip_level".into(),
            format!(
                "{} is not a gzip level: use 1 (fast) to 9 (small)",
                c.gzip_level
            ),
        );
    }
    if c.brotli_level > 11 {
        p(
            "cache.compression.brotli_level".into(),
            format!(
                "{} is not a brotli quality: use 0 (fast) to 11 (small)",
                c.brotli_level
            ),
        );
    }
    if c.workers > 64 {
        p(
            "cache.compression.workers".into(),
            format!(
                "{} encoder threads is too many: use 0 (automatic) to 64",
                c.workers
            ),
        );
    }
    for (i, t) in c.types.iter().enumerate() {
        let valid = t
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !t.contains([';', ' ', ',']));
        if !valid {
            p(
                format!("cache.compression.types[{i}]"),
                format!("{t:?} is not a media type: write e.g. \"text/html\" or \"text/*\""),
            );
        }
    }

    let mut hosts: HashMap<String, usize> = HashMap::new();
    for (i, site) in config.sites.iter().enumerate() {
        site_problems(i, site, &mut p);
        if let Some(wp) = &site.wordpress {
            crate::wordpress::validate_wordpress(i, wp, config, &mut p);
        }
        for (h, host) in site.hosts.iter().enumerate() {
            let host = host.to_ascii_lowercase();
            if let Some(other) = hosts.insert(host.clone(), i) {
                p(
                    format!("site[{i}].hosts[{h}]"),
                    format!(
                        "host {host:?} is already served by site[{other}]; each host belongs to one site"
                    ),
                );
            }
        }
    }
    problems
}

fn site_problems(i: usize, site: &SiteConfig, p: &mut impl FnMut(String, String)) {
    if let Some(waf) = &site.waf {
        crate::waf::validate_waf(i, waf, p);
    }
    let key = |k: &str| format!("site[{i}].{k}");
    if site.name.trim().is_empty() {
        p(key("name"), "a site needs a non-empty name".into());
    }
    if site.hosts.is_empty() {
        p(
            key("hosts"),
            "a site needs at least one host (use \"*\" for any)".into(),
        );
    }
    for (h, host) in site.hosts.iter().enumerate() {
        if host.contains(':') || host.contains('/') || host.trim().is_empty() {
            p(
                format!("site[{i}].hosts[{h}]"),
                format!("{host:?} is not a host name: write it without scheme, port or path"),
            );
        }
    }
    match url::Url::parse(&site.origin) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            if u.host_str().is_none() {
                p(key("origin"), format!("{:?} has no host", site.origin));
            }
            if u.path() != "/" && !u.path().is_empty() {
                p(
                    key("origin"),
                    format!(
                        "{:?}: an origin has no path; write e.g. \"http://127.0.0.1:80\"",
                        site.origin
                    ),
                );
            }
        }
        Ok(u) => p(
            key("origin"),
            format!(
                "scheme {:?} is not supported; use http:// or https://",
                u.scheme()
            ),
        ),
        Err(e) => p(
            key("origin"),
            format!(
                "{:?} is not a URL ({e}); write e.g. \"http://127.0.0.1:80\"",
                site.origin
            ),
        ),
    }
    if site.tls_cert.is_some() != site.tls_key.is_some() {
        p(
            key("tls_cert"),
            "`tls_cert` and `tls_key` go together: give both or neither".into(),
        );
    }
    for (q, pair) in site.bypass_query.iter().enumerate() {
        if pair.is_empty() {
            p(
                format!("site[{i}].bypass_query[{q}]"),
                "empty entry; write `name=value` or `name`".into(),
            );
        }
    }
    for (b, path) in site.bypass_paths.iter().enumerate() {
        if !path.starts_with('/') {
            p(
                format!("site[{i}].bypass_paths[{b}]"),
                format!("{path:?} must start with `/`"),
            );
        }
    }
    if let Some(backup) = &site.backup {
        backup_problems(i, backup, p);
    }
    if site.profile == Profile::Http && site.default_ttl.0.as_secs() > 0 {
        p(
            key("default_ttl"),
            "profile \"http\" is a strict RFC 9111 cache: it has no default TTL (use profile \"wordpress\")".into(),
        );
    }
}

fn backup_problems(i: usize, backup: &BackupConfig, p: &mut impl FnMut(String, String)) {
    let key = |k: &str| format!("site[{i}].backup.{k}");
    if backup.root.as_os_str().is_empty() {
        p(
            key("root"),
            "a backup needs the site's root directory, e.g. root = \"/var/www/shop\"".into(),
        );
    } else if !backup.root.is_absolute() {
        p(
            key("root"),
            format!("{:?} must be an absolute path", backup.root),
        );
    }
    let every = backup.every.0.as_secs();
    if every != 0 && every < 60 {
        p(
            key("every"),
            format!(
                "{every}s is too often: scheduled snapshots run at most once a minute (or 0 = off)"
            ),
        );
    }
    for (e, pattern) in backup.exclude.iter().enumerate() {
        if pattern.trim().is_empty() {
            p(
                format!("site[{i}].backup.exclude[{e}]"),
                "empty pattern".into(),
            );
        }
    }
    if let Some(bunker) = &backup.bunker {
        if bunker.repository.trim().is_empty() {
            p(
                key("bunker.repository"),
                "the bunker needs a repository, e.g. \"rest:http://backup-host:8000/shop\"".into(),
            );
        } else if bunker.repository == backup.repository {
            p(
                key("bunker.repository"),
                "the bunker must be a different repository from the main one".into(),
            );
        }
        if bunker.password.is_empty() && bunker.password_file.as_os_str().is_empty() {
            p(
                key("bunker.password_file"),
                "the bunker needs its own credentials: give `password_file` (or `password`)".into(),
            );
        }
    }
}

fn socket_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{addr:?} is not an address; write IP:PORT such as \"0.0.0.0:8080\" or \"[::1]:8080\""
        )
    })
}
