use super::*;

#[test]
fn empty_file_is_a_working_configuration() {
    let c = parse("", "t").expect("empty config");
    assert_eq!(c.server.listen, vec!["0.0.0.0:8080"]);
    assert!(c.sites.is_empty());
    assert_eq!(c.cache.memory_size.0, 256 << 20);
}

#[test]
fn full_site_parses_with_units() {
    let text = r#"
[server]
listen = ["127.0.0.1:20080"]
graceful_shutdown_timeout = "3s"

[cache]
memory_size = "64MiB"
disk_size = "1GB"

[[site]]
name = "shop"
hosts = ["shop.test", "www.shop.test"]
origin = "http://127.0.0.1:20081"
default_ttl = "10m"
stale_if_error = "24h"
"#;
    let c = parse(text, "t").expect("valid");
    assert_eq!(c.cache.memory_size.0, 64 << 20);
    assert_eq!(c.cache.disk_size.0, 1_000_000_000);
    assert_eq!(c.sites[0].default_ttl.0.as_secs(), 600);
    assert_eq!(c.sites[0].stale_if_error.0.as_secs(), 86_400);
    assert_eq!(c.server.graceful_shutdown_timeout.0.as_secs(), 3);
    assert!(
        c.sites[0]
            .bypass_cookies
            .iter()
            .any(|b| b == "wordpress_logged_in_*")
    );
}

#[test]
fn unknown_key_names_its_line() {
    let text = "[server]\nlisten = [\"127.0.0.1:1\"]\nlisen = 3\n";
    let err = parse(text, "t").expect_err("unknown key");
    let p = &err.problems()[0];
    assert_eq!(p.line, Some(3), "{err}");
    assert!(p.message.contains("lisen"), "{err}");
}

#[test]
fn bad_duration_says_what_is_allowed() {
    let text = "[[site]]\norigin = \"http://127.0.0.1:1\"\ndefault_ttl = \"ten minutes\"\n";
    let err = parse(text, "t").expect_err("bad duration");
    let p = &err.problems()[0];
    assert_eq!(p.line, Some(3), "{err}");
    assert!(p.message.contains("15m"), "{err}");
}

#[test]
fn semantic_errors_name_key_and_line() {
    let text = r#"
[[site]]
name = "a"
hosts = ["a.test"]
origin = "http://127.0.0.1:1"

[[site]]
name = "b"
hosts = ["a.test"]
origin = "ftp://x"
"#;
    let err = parse(text, "t").expect_err("two problems");
    let problems = err.problems();
    let origin = problems
        .iter()
        .find(|p| p.key == "site[1].origin")
        .expect("origin problem");
    assert_eq!(origin.line, Some(10), "{err}");
    assert!(origin.message.contains("http://"), "{err}");
    let dup = problems
        .iter()
        .find(|p| p.key == "site[1].hosts[0]")
        .expect("duplicate host");
    assert_eq!(dup.line, Some(9), "{err}");
}

#[test]
fn bad_listen_address_is_reported() {
    let err = parse("[server]\nlisten = [\"localhost\"]\n", "t").expect_err("bad addr");
    assert_eq!(err.problems()[0].key, "server.listen[0]");
    assert_eq!(err.problems()[0].line, Some(2));
}

#[test]
fn http_profile_has_no_wordpress_rules_unless_asked() {
    let text = r#"
[[site]]
origin = "http://127.0.0.1:1"
profile = "http"
bypass_paths = ["/private/"]
"#;
    let c = parse(text, "t").expect("valid");
    let s = &c.sites[0];
    assert_eq!(s.default_ttl.0.as_secs(), 0);
    assert!(s.tracking_params.is_empty());
    assert!(s.bypass_cookies.is_empty());
    assert_eq!(s.bypass_paths, vec!["/private/"]);
}

#[test]
fn http_profile_refuses_a_default_ttl() {
    let text =
        "[[site]]\norigin = \"http://127.0.0.1:1\"\nprofile = \"http\"\ndefault_ttl = \"5m\"\n";
    let err = parse(text, "t").expect_err("ttl on http");
    assert_eq!(err.problems()[0].line, Some(4));
}

#[test]
fn sizes_parse() {
    assert_eq!(ByteSize::parse("512k").unwrap().0, 512_000);
    assert_eq!(ByteSize::parse("2GiB").unwrap().0, 2 << 30);
    assert!(ByteSize::parse("2 parsecs").is_err());
}

#[test]
fn compression_defaults_and_bad_values_name_their_key_and_line() {
    let c = parse("", "t").expect("empty config");
    assert!(c.cache.compression.enabled);
    assert!(c.cache.compression.types.iter().any(|t| t == "text/*"));
    assert!(
        !c.cache
            .compression
            .types
            .iter()
            .any(|t| t.starts_with("image/jp"))
    );
    let text = "[cache.compression]\ntypes = [\"text/html\", \"html\"]\ngzip_level = 12\n";
    let err = parse(text, "t").expect_err("bad compression");
    let problems = err.problems();
    let level = problems
        .iter()
        .find(|p| p.key == "cache.compression.gzip_level")
        .expect("gzip_level named");
    assert_eq!(level.line, Some(3), "{err}");
    assert!(level.message.contains("1 (fast) to 9"), "{err}");
    let types = problems
        .iter()
        .find(|p| p.key == "cache.compression.types[1]")
        .expect("types[1] named");
    assert!(types.message.contains("\"html\""), "{err}");
}

#[test]
fn the_admin_api_stays_on_loopback_unless_allowed() {
    let site = "[[site]]\norigin = \"http://127.0.0.1:1\"\n";
    let err = parse(&format!("[admin]\nlisten = \"0.0.0.0:9080\"\n{site}"), "t")
        .expect_err("remote admin");
    let problem = err
        .problems()
        .iter()
        .find(|p| p.key == "admin.listen")
        .unwrap_or_else(|| panic!("named: {err}"));
    assert_eq!(problem.line, Some(2), "{err}");
    assert!(problem.message.contains("allow_remote"), "{err}");
    for text in [
        format!("[admin]\nlisten = \"0.0.0.0:9080\"\nallow_remote = true\n{site}"),
        format!("[admin]\nlisten = \"[::1]:9080\"\n{site}"),
        site.to_string(),
    ] {
        assert!(parse(&text, "t").is_ok(), "{text}");
    }
}

#[test]
fn paths_left_out_go_to_private_directories_never_tmp() {
    let c = parse("[[site]]\norigin = \"http://127.0.0.1:1\"\n", "t").expect("valid");
    let dirs = crate::dirs::DefaultDirs::of_this_process();
    assert_eq!(c.admin.token_file, dirs.state.join("admin.token"));
    assert_eq!(
        c.maintenance.state_file,
        dirs.state.join("maintenance.json")
    );
    assert_eq!(c.server.pid_file, dirs.runtime.join("peakguard.pid"));
    assert_eq!(c.server.upgrade_sock, dirs.runtime.join("upgrade.sock"));
    assert_eq!(c.cache.disk_path, dirs.cache);
    for p in [
        &c.admin.token_file,
        &c.maintenance.state_file,
        &c.server.pid_file,
        &c.server.upgrade_sock,
        &c.cache.disk_path,
        &c.shield.state_file,
        &c.shield.room_key_file,
    ] {
        assert!(!p.starts_with("/tmp"), "{}", p.display());
    }
    // Given, they are kept; an empty disk_path still switches the disk tier off.
    let given = parse(
        "[cache]\ndisk_path = \"\"\n[admin]\ntoken_file = \"/srv/pg/token\"\n[[site]]\norigin = \"http://127.0.0.1:1\"\n",
        "t",
    )
    .expect("valid");
    assert!(given.cache.disk_path.as_os_str().is_empty());
    assert_eq!(
        given.admin.token_file,
        std::path::Path::new("/srv/pg/token")
    );
}

#[test]
fn the_wordpress_plugin_tokens_must_be_narrow() {
    let text = "[[admin.tokens]]\nname = \"wide\"\ntoken = \"0123456789abcdef0\"\npermissions = [\"all\"]\n\
                [[site]]\nhosts = [\"shop.test\"]\n[site.wordpress]\nroot = \"/srv/wp\"\npurge_token = \"wide\"\nadmin_bar_token = \"missing\"\nadmin_url = \"127.0.0.1:9080\"\n";
    let err = parse(text, "t").expect_err("three problems");
    let keys: Vec<_> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"site[0].wordpress.purge_token"), "{keys:?}");
    assert!(
        keys.contains(&"site[0].wordpress.admin_bar_token"),
        "{keys:?}"
    );
    assert!(keys.contains(&"site[0].wordpress.admin_url"), "{keys:?}");
    let purge = err
        .problems()
        .iter()
        .find(|p| p.key == "site[0].wordpress.purge_token")
        .expect("purge_token problem");
    assert!(
        purge.message.contains("exactly [\"purge\"]"),
        "{}",
        purge.message
    );
    assert_eq!(purge.line, Some(9));
}

#[test]
fn a_guard_owned_table_is_checked_by_its_guard_and_an_unknown_one_named_with_its_line() {
    let text = "[[site]]\nhosts = [\"shop.test\"]\n\n\n[site.shield.extra]\nlevel = 9\n";
    let err = parse(text, "t").expect_err("no guard owns [site.shield.extra]");
    let p = &err.problems()[0];
    assert_eq!(p.key, "site[0].shield.extra");
    assert_eq!(p.line, Some(5));
    assert!(p.message.contains("unknown section"), "{}", p.message);
    let tables = [GuardTable {
        name: "extra",
        check: |_, value| match value.get("level").and_then(|l| l.as_integer()) {
            Some(l) if l > 5 => vec![("level".into(), "at most 5".into())],
            _ => Vec::new(),
        },
    }];
    let ext = Extensions {
        guard_tables: &tables,
        ..Extensions::default()
    };
    let err = parse_with(text, "t", &ext).expect_err("the guard's own check");
    let p = &err.problems()[0];
    assert_eq!(
        (p.key.as_str(), p.line, p.message.as_str()),
        ("site[0].shield.extra.level", Some(6), "at most 5")
    );
    let ok = parse_with(&text.replace("9", "3"), "t", &ext).expect("valid");
    assert!(ok.sites[0].shield.guards.contains_key("extra"));
}
