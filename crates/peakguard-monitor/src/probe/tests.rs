use super::*;

fn parse(
    text: &str,
    origin: &str,
) -> Result<peakguard_config::Config, peakguard_config::ConfigError> {
    peakguard_config::parse_with(text, origin, &crate::extensions())
}

#[test]
fn every_kind_is_registered_once_and_reports_values() {
    let mut kinds: Vec<&str> = crate::PROBES.iter().map(|p| p.kind()).collect();
    kinds.sort_unstable();
    let n = kinds.len();
    kinds.dedup();
    assert_eq!(n, kinds.len(), "two probes share a kind");
    for p in crate::PROBES {
        assert!(p.values().contains(&"success"), "{}", p.kind());
        assert_eq!(
            find(&ProbeKind::named(p.kind())).map(|f| f.kind()),
            Some(p.kind())
        );
    }
}

// Moved from peakguard-config with the keys they read: what a probe's keys are is its own.

#[test]
fn probes_parse_with_their_defaults() {
    let text = r#"
[[probe]]
name = "home"
kind = "http"
url = "https://shop.test/"
keyword = "Add to cart"
max_time = "2s"
resolve = "127.0.0.1:8443"
tls_verify = false

[[probe]]
name = "db port"
kind = "tcp"
address = "127.0.0.1:3306"

[[probe]]
name = "uploads"
kind = "disk"
path = "/var/www"
min_free_percent = 10
min_free_bytes = "5GiB"
"#;
    let config = parse(text, "t").expect("valid probes");
    assert_eq!(config.probes.len(), 3);
    let home = &config.probes[0];
    assert_eq!(home.kind, ProbeKind::named("http"));
    assert_eq!(home.interval.0, std::time::Duration::from_secs(60));
    assert_eq!(home.timeout.0, std::time::Duration::from_secs(10));
    let home: crate::http_probe::HttpSettings = own_settings(home).expect("http keys");
    assert_eq!(home.max_time.map(|t| t.0.as_millis()), Some(2000));
    assert!(!home.tls_verify && !home.follow_redirects);
    let uploads: crate::disk::DiskSettings = own_settings(&config.probes[2]).expect("disk keys");
    assert_eq!(uploads.min_free_bytes.map(|b| b.0), Some(5 << 30));
}

#[test]
fn probe_mistakes_name_key_and_line() {
    let text = r#"
[[probe]]
name = "home"
kind = "http"
url = "ftp://shop.test/"

[[probe]]
name = "home"
kind = "tcp"
address = "no-port"
path = "/var/www"
"#;
    let err = parse(text, "t").expect_err("problems");
    let problems = err.problems();
    let find = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no problem for {key}: {err}"))
    };
    assert!(find("probe[0].url").message.contains("http://"), "{err}");
    assert_eq!(find("probe[0].url").line, Some(5), "{err}");
    assert!(find("probe[1].name").message.contains("already"), "{err}");
    assert_eq!(find("probe[1].address").line, Some(10), "{err}");
    assert!(find("probe[1].path").message.contains("disk"), "{err}");
    let unknown = parse("[[probe]]\nname = \"x\"\nkind = \"ftp\"\n", "t").expect_err("kind");
    assert!(unknown.to_string().contains("ftp"), "{unknown}");
}

#[test]
fn a_kinds_keys_are_its_own_with_their_types_and_their_line() {
    let text = r#"
[[probe]]
name = "db"
kind = "mariadb"
socket = "/run/mysqld/mysqld.sock"
user = 3
security_delay = "1h"
colour = "blue"
"#;
    let err = parse(text, "t").expect_err("problems");
    let problems = err.problems();
    let find = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no problem for {key}: {err}"))
    };
    // A key of the flattened connection: its own line, its type.
    assert_eq!(find("probe[0].user").line, Some(6), "{err}");
    assert!(find("probe[0].user").message.contains("string"), "{err}");
    assert!(
        find("probe[0].security_delay")
            .message
            .contains("belongs to kind = \"wordpress\""),
        "{err}"
    );
    assert!(
        find("probe[0].colour")
            .message
            .contains("unknown key `colour` for kind = \"mariadb\""),
        "{err}"
    );
    let missing = parse("[[probe]]\nname = \"d\"\nkind = \"dns\"\n", "t").expect_err("query");
    assert!(
        missing.to_string().contains("a dns probe needs `query`"),
        "{missing}"
    );
}

#[test]
fn a_probes_password_stays_out_of_its_debug_form() {
    let text = "[[probe]]\nname = \"db\"\nkind = \"mariadb\"\nsocket = \"/s\"\nuser = \"u\"\npassword = \"hunter2\"\n";
    let config = parse(text, "t").expect("valid");
    let shown = format!("{:?}", config.probes);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password"), "{shown}");
}
