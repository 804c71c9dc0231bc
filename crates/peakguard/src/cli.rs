//! The command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// peakguard keeps a WordPress site up through a campaign peak: a caching reverse proxy that
/// knows WordPress, serves stale pages when PHP or the database fails, and is purged and put
/// in maintenance mode from the command line.
#[derive(Parser)]
#[command(
    name = "peakguard",
    version,
    after_help = "Start with `peakguard demo` to see it work, then `peakguard serve --origin http://127.0.0.1:80`."
)]
pub struct Cli {
    /// Log what happens (info level; RUST_LOG overrides).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the edge: the caching reverse proxy and its admin API.
    ///
    /// Quick start without a file: `peakguard serve --listen 0.0.0.0:8080 --origin http://127.0.0.1:80`.
    /// Signals: SIGHUP reloads the configuration file; SIGTERM shuts down gracefully; for a
    /// zero-downtime upgrade start the new binary with `--upgrade` and send SIGQUIT to the old one.
    Serve(ServeArgs),
    /// Remove pages from the cache of a running edge.
    Purge(PurgeArgs),
    /// Turn maintenance mode on or off on a running edge (visitors get a 503 page).
    Maintenance(MaintenanceArgs),
    /// Show a running edge's status.
    Status(AdminArgs),
    /// The shield of a running edge: each site's guards, origin admission (limit, requests
    /// at the origin, waiters per lane) and waiting room.
    Shield(ShieldArgs),
    /// Switch a running edge's waiting room.
    ///
    ///   peakguard waiting-room status
    ///   peakguard waiting-room queue-all --site shop      # every new visitor lines up
    ///   peakguard waiting-room normal --site shop         # only when the room is full
    ///   peakguard waiting-room suspend --site shop        # let everyone in (the line is kept)
    ///   peakguard waiting-room open-at 2026-12-04T18:00:00Z --site shop
    ///                     # a pre-queue until then, drawn at random at the opening
    ///   peakguard waiting-room cancel-opening --site shop
    ///   peakguard waiting-room rotate-key                 # new cookie key, places kept
    #[command(name = "waiting-room", verbatim_doc_comment)]
    WaitingRoom(WaitingRoomArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// See it work: a simulated WordPress, peakguard in front, a short spike against both.
    Demo(DemoArgs),
    /// Replay the expected peak against a site before the campaign (open-model load).
    ///
    /// Requests start at their scheduled times whatever the server does, and latency counts
    /// from that time, so a stall shows in the percentiles. Behind a waiting room, visitors
    /// act like browsers: they keep the page open, refresh after its Retry-After with the
    /// cookie that holds their place, and the report counts their time in line apart from
    /// the requests (a waiting page is not an error).
    ///
    /// Examples:
    ///
    ///   peakguard rehearse --target http://127.0.0.1:8080 --rate 200 --duration 1m --sitemap
    ///
    ///   peakguard rehearse --target https://shop.example.com --resolve shop.example.com:443:10.0.0.5 \
    ///       --profile "ramp 0-500 30s, hold 2m, drop" --urls key-pages.txt --html report.html
    ///
    ///   peakguard rehearse --scenario launch.toml --json after.json
    ///
    ///   peakguard rehearse compare before.json after.json
    #[command(verbatim_doc_comment)]
    Rehearse(Box<RehearseArgs>),
    /// Run every `[[probe]]` of the configuration once, print what each found, and exit
    /// non-zero if any failed (for cron, CI and the pre-launch checklist).
    ///
    ///   peakguard probe                        # ./peakguard.toml
    ///   peakguard probe --config /etc/peakguard.toml --only home --json
    ///
    /// Kinds: http (status, keyword, max_time, host, resolve, redirects, TLS verification;
    /// timings per phase), tcp (connect), tls (days until the certificate expires, chain
    /// trusted and valid for the name), icmp (ping; "not permitted" without the right), disk
    /// (free bytes, percent, inodes), mariadb (connect + SELECT 1, replica lag), wordpress
    /// (updates pending, security release overdue). backup and edge probes read the running
    /// edge and run inside `serve`.
    /// Exit status: 0 every probe passed, 1 at least one failed, 2 the probes could not run
    /// (a configuration mistake, an unknown --only name).
    #[command(verbatim_doc_comment)]
    Probe(ProbeArgs),
    /// Read the journal: every intervention made through the admin API (purges, maintenance,
    /// waiting-room switches, backups, silences), with when, which token, on which site and
    /// the result. Each line carries the hash of the one before it: --verify finds a line
    /// edited, removed or moved, and names it.
    ///
    ///   peakguard journal --since 12h --site shop
    ///   peakguard journal --verify
    ///
    /// Exit status: 0 read (and, with --verify, intact), 1 --verify found a broken line,
    /// 2 it could not be read.
    #[command(verbatim_doc_comment)]
    Journal(JournalArgs),
    /// The morning-after report: traffic and conversions by source, revenue and cost per
    /// acquisition, top pages, the peak, cache hit ratio, latency, errors visitors saw,
    /// waiting-room and guard refusals, alerts and every intervention from the journal —
    /// for a campaign's window or a range. Read from the statistics on disk (the edge need
    /// not run; what it counted in the last seconds may be missing).
    ///
    ///   peakguard report --campaign "Black Friday" --html bf.html
    ///   peakguard report --last 24h --site shop
    ///   peakguard report --from 2026-11-27T00:00:00Z --to 2026-11-28T00:00:00Z --json
    ///
    /// The HTML page is one self-contained file (charts inline, no script, no external
    /// request), written 0600: it lists the journal, which may name addresses.
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
    /// Run the probes, alert rules and notifiers continuously, alone (on a machine without an
    /// edge; `peakguard serve` runs them itself when the configuration has `[[probe]]`).
    ///
    ///   peakguard monitor --config /etc/peakguard/monitor.toml
    ///
    /// Serves on admin.listen (bearer token as the edge's admin API): GET /metrics,
    /// /probes, /alerts, /status; `peakguard alerts` talks to it. SIGINT/SIGTERM stop it.
    #[command(verbatim_doc_comment)]
    Monitor(MonitorArgs),
    /// The alerts of a running monitor (`serve` or `monitor`): list them, silence them.
    ///
    ///   peakguard alerts list
    ///   peakguard alerts silence --match alertname=SiteDown --match probe=home --for 2h \
    ///       --comment "moving the database"
    ///   peakguard alerts unsilence ID
    ///
    /// A silenced alert still changes state (and shows here); nobody is told of it until
    /// the silence ends. Maintenance mode silences the alerts it explains (a failing site).
    #[command(verbatim_doc_comment)]
    Alerts(AlertsArgs),
    /// The WAF (`[site.waf]`): its rule set, installing CRS releases, why a request was
    /// blocked.
    ///
    ///   peakguard waf status                   # each site's CRS, plugins, what the edge runs
    ///   peakguard waf crs install coreruleset-4.28.0-minimal.tar.gz \
    ///       --signature coreruleset-4.28.0-minimal.tar.gz.asc --keyring crs.gpg
    ///   peakguard waf crs rollback             # back to the previous release
    ///   peakguard waf plugin install wordpress-rule-exclusions-plugin-1.2.0.tar.gz --sha256 …
    ///   peakguard waf explain 3f2a9c0d1b7e     # the id on the block page
    ///
    /// CRS releases: https://github.com/coreruleset/coreruleset/releases (each with its
    /// .asc signature); the WordPress plugin:
    /// https://github.com/coreruleset/wordpress-rule-exclusions-plugin/releases.
    /// A running edge takes a new rule set on SIGHUP (kill -HUP PID); one that fails to
    /// load leaves the running rules in place and the log says why.
    #[command(verbatim_doc_comment)]
    Waf(WafArgs),
    /// The companion WordPress plugin: tags pages, purges what an edit changes, admin bar.
    ///
    ///   peakguard wordpress install --site shop    # write it into the site, check the edge
    ///   peakguard wordpress uninstall --site shop
    ///   peakguard wordpress plugin > peakguard.php # by hand: settings in wp-config.php
    ///
    /// The plugin holds its own purge-only token (`[[admin.tokens]]` with
    /// permissions = ["purge"]), never the admin token; a second one with
    /// ["maintenance", "read"] gives the admin bar its cache status and maintenance switch.
    /// Where it goes: `[site.wordpress] mu_plugins`, else `<root>/wp-content/mu-plugins`
    /// with root from `[site.wordpress]` or `[site.backup]`. Rerun install after upgrading
    /// peakguard: the plugin is versioned with it.
    #[command(verbatim_doc_comment)]
    Wordpress(WordpressArgs),
    #[command(flatten)]
    Backup(BackupCommand),
}

#[derive(Args)]
pub struct ProbeArgs {
    /// Configuration file (default ./peakguard.toml).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Run only the probe with this name (repeat for several).
    #[arg(long)]
    pub only: Vec<String>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct JournalArgs {
    /// Configuration file (default ./peakguard.toml; without one, the default journal in
    /// the state directory).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Only entries from this long ago (`12h`, `7days`) or since this time
    /// (`2026-12-07T08:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the entries of this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Check every line's hash and its place in the chain; say the first broken line.
    #[arg(long)]
    pub verify: bool,
    /// Print the entries as JSON lines, as stored.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Configuration file (default ./peakguard.toml).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// A `[[campaign]]`'s name: its window and its figures.
    #[arg(long, conflicts_with_all = ["from", "last"])]
    pub campaign: Option<String>,
    /// From this time (`2026-11-27T00:00:00Z`).
    #[arg(long, conflicts_with = "last")]
    pub from: Option<String>,
    /// To this time (default: now).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// The last `24h`, `7days`… (the default: the last 24 hours).
    #[arg(long)]
    pub last: Option<String>,
    /// Only this site (default: every site together).
    #[arg(long)]
    pub site: Option<String>,
    /// Write the report as one HTML page to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct WordpressArgs {
    #[command(subcommand)]
    pub action: WordpressAction,
}

#[derive(Subcommand)]
pub enum WordpressAction {
    /// Write the plugin, with its settings, into the site's mu-plugins directory, then check
    /// the plugin's tokens against the running edge's admin API.
    Install {
        /// Configuration file (default ./peakguard.toml).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The `[[site]]` to install into (needed when there are several).
        #[arg(long)]
        site: Option<String>,
    },
    /// Remove the plugin from the site (only a file that is peakguard's).
    Uninstall {
        /// Configuration file (default ./peakguard.toml).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The `[[site]]` to remove it from (needed when there are several).
        #[arg(long)]
        site: Option<String>,
    },
    /// Print the plugin without settings, for installing by hand; it then reads
    /// PEAKGUARD_ADMIN_URL, PEAKGUARD_PURGE_TOKEN (and optionally PEAKGUARD_ADMIN_BAR_TOKEN,
    /// PEAKGUARD_HOST) from wp-config.php.
    Plugin,
}

#[derive(Args)]
pub struct WafArgs {
    #[command(subcommand)]
    pub action: WafAction,
}

#[derive(Subcommand)]
pub enum WafAction {
    /// Why the WAF blocked a request (from the WAF log), and the exception that allows it.
    Explain {
        /// The incident id (block page, `X-Peakguard-Incident` header, access log).
        incident: String,
        /// Configuration file (default ./peakguard.toml): where the WAF log is.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Each site's rule set (CRS release, where it was found, plugins, warnings), the
    /// releases installed, and what a running edge has loaded.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Core Rule Set releases: install one, go back to the previous one.
    #[command(subcommand)]
    Crs(CrsAction),
    /// CRS 4 plugins (the WordPress rule exclusions, others a site names in `plugins`).
    #[command(subcommand)]
    Plugin(PluginAction),
}

/// How a downloaded release is checked before it is unpacked.
#[derive(Args, Clone)]
pub struct VerifyArgs {
    /// The SHA-256 the publisher gives for the file (hex).
    #[arg(long)]
    pub sha256: Option<String>,
    /// A detached signature (default: FILE.asc beside it, when --keyring is given).
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// The keyring gpgv checks the signature against (binary: gpg --dearmor < KEY.asc >
    /// KEY.gpg). The CRS project's key is published at https://coreruleset.org/security.asc.
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Install a tarball with neither check.
    #[arg(long)]
    pub unverified: bool,
}

#[derive(Subcommand)]
pub enum CrsAction {
    /// Install a CRS release (a .tar.gz as the CRS project publishes it, or a directory)
    /// beside the others in `[waf] crs_home` and make it current. It is verified, then
    /// compiled by libmodsecurity with the installed plugins and each site's settings;
    /// nothing changes if it does not load. The previous release is kept for `rollback`.
    ///
    ///   peakguard waf crs install coreruleset-4.28.0-minimal.tar.gz --sha256 9f3c…
    ///   peakguard waf crs install ./coreruleset-4.28.0/
    #[command(verbatim_doc_comment)]
    Install {
        /// The release: FILE.tar.gz or a directory with rules/ inside.
        source: PathBuf,
        #[command(flatten)]
        verify: VerifyArgs,
        /// Configuration file (default ./peakguard.toml): crs_home and the sites' settings.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Make the previous release current again (and the current one previous).
    Rollback {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PluginAction {
    /// Install a CRS 4 plugin (its release .tar.gz or a directory) into
    /// `[waf] crs_home`/plugins/NAME, replacing an older copy, after compiling it with the
    /// current rule set.
    ///
    ///   peakguard waf plugin install wordpress-rule-exclusions-plugin-1.2.0.tar.gz --sha256 …
    #[command(verbatim_doc_comment)]
    Install {
        source: PathBuf,
        #[command(flatten)]
        verify: VerifyArgs,
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct MonitorArgs {
    /// Configuration file (default ./peakguard.toml).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Serve the monitor's API here instead of admin.listen.
    #[arg(long)]
    pub admin_listen: Option<String>,
}

#[derive(Args)]
pub struct AlertsArgs {
    /// list (the default), silence, unsilence.
    #[arg(value_enum, default_value = "list")]
    pub action: AlertsAction,
    /// unsilence: the silence's id (see `peakguard alerts list`).
    pub id: Option<String>,
    /// silence: label=value, all must match (repeat: --match alertname=SiteDown --match probe=home).
    #[arg(long = "match")]
    pub matchers: Vec<String>,
    /// silence: how long (2h, 30m, 1d).
    #[arg(long = "for", default_value = "2h")]
    pub duration: String,
    /// silence: why (shown in the list).
    #[arg(long, default_value = "")]
    pub comment: String,
    /// list: print the monitor's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum AlertsAction {
    /// Alerts pending and firing, silences in force, notifiers.
    List,
    /// Silence the alerts whose labels match, for a while.
    Silence,
    /// End a silence now.
    Unsilence,
}

/// Which site's backups (from the configuration's `[site.backup]`).
#[derive(Args, Clone)]
pub struct SiteArgs {
    /// Configuration file (default ./peakguard.toml).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// The site (needed when several sites have backups).
    #[arg(long)]
    pub site: Option<String>,
}

/// Snapshots are named by their peakguard id (or a unique prefix), a repository id, or
/// `latest`. Never run `restic prune` on these repositories while peakguard runs.
#[derive(Subcommand)]
pub enum BackupCommand {
    /// Take a snapshot now: the site's files and a consistent database dump.
    ///
    /// `peakguard serve` takes them by itself (at start, every `every`, and on
    /// `POST /backup?site=NAME` on the admin API). A run reuses what did not change since
    /// the latest snapshot: nothing changed → the previous snapshot's tree (no dump, no
    /// read); only the database → the files; only files → the previous dump.
    ///
    /// Example: peakguard backup --config /etc/peakguard/peakguard.toml --site shop
    Backup {
        #[command(flatten)]
        site: SiteArgs,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots (of the bunker with --bunker, with how far it lags).
    Snapshots {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        bunker: bool,
        #[arg(long)]
        json: bool,
    },
    /// Files added/changed/removed between two snapshots, and whether the database changed.
    Diff {
        #[command(flatten)]
        site: SiteArgs,
        from: String,
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot into a directory: `DIR/site/` (files) and `DIR/database.sql`.
    Restore {
        #[command(flatten)]
        site: SiteArgs,
        snapshot: String,
        #[arg(long)]
        to: PathBuf,
        /// Read from the bunker instead of the main repository.
        #[arg(long)]
        bunker: bool,
        #[arg(long)]
        json: bool,
    },
    /// Verify the repository (exit 1 when damaged); --read-data reads every pack.
    Check {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        read_data: bool,
        #[arg(long)]
        bunker: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a snapshot as a downloadable .tar.gz.
    Export {
        #[command(flatten)]
        site: SiteArgs,
        snapshot: String,
        #[arg(long)]
        to: PathBuf,
        #[arg(long)]
        bunker: bool,
    },
    /// Copy the snapshots the bunker lacks (serve does this after every scheduled snapshot).
    Copy {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        json: bool,
    },
    /// Apply the retention rules and prune unreferenced data.
    Prune {
        #[command(flatten)]
        site: SiteArgs,
        #[arg(long)]
        bunker: bool,
        #[arg(long)]
        json: bool,
    },
    /// Put the live site back as it was at SNAPSHOT (files and database), in one step.
    ///
    /// Maintenance on (through the edge's admin API; without an edge the rollback stops
    /// unless --force) → safety snapshot (the undo) → files restored to a staging directory
    /// → the dump imported beside the live tables in the site's own database
    /// (`pgnew_<table>`) → files swapped in → tables swapped in with one RENAME TABLE, the
    /// previous ones kept as `pgold_<table>` → cache purged → maintenance off. Any failure
    /// undoes what was done, and maintenance ends on every way out.
    ///
    /// A shop keeps its orders: WooCommerce's order tables stay live, and order posts, notes
    /// and customers are copied as they are now (new orders and those paid, shipped or
    /// refunded since); orders placed during the swap are read from the kept tables after
    /// it. The database user needs rights on the site's own database only (WordPress's own
    /// user will do): SELECT, SHOW VIEW, EVENT, TRIGGER and LOCK TABLES for backups, and
    /// INSERT, UPDATE, DELETE, CREATE, DROP, ALTER and INDEX for rollbacks.
    ///
    /// `peakguard rollback --finish` drops the kept `pgold_` tables once the rolled-back
    /// site is known good (`peakguard snapshots` lists them); the next rollback drops them
    /// too.
    #[command(verbatim_doc_comment)]
    Rollback {
        #[command(flatten)]
        site: SiteArgs,
        /// The snapshot to go back to (id, unique prefix or `latest`).
        #[arg(required_unless_present = "finish")]
        snapshot: Option<String>,
        /// Drop the tables the last rollback kept (`pgold_<table>`) and exit.
        #[arg(long, conflicts_with_all = ["snapshot", "force", "keep_orders", "no_keep_orders"])]
        finish: bool,
        /// Roll back even when no edge can switch maintenance on: visitors may then see a
        /// half-restored site for a moment.
        #[arg(long)]
        force: bool,
        /// Carry orders/customers made since the snapshot over (default: when WooCommerce tables exist).
        #[arg(long, conflicts_with = "no_keep_orders")]
        keep_orders: bool,
        #[arg(long)]
        no_keep_orders: bool,
        /// The edge's admin API (default: admin.listen from the configuration).
        #[arg(long, env = "PEAKGUARD_ADMIN")]
        admin: Option<String>,
        /// Admin bearer token (default: admin.token or admin.token_file).
        #[arg(long, env = "PEAKGUARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RehearseArgs {
    #[command(subcommand)]
    pub command: Option<RehearseCommand>,
    #[command(flatten)]
    pub run: RehearseRunArgs,
}

#[derive(Subcommand)]
pub enum RehearseCommand {
    /// Per URL group: how p50, p99 and the error rate changed between two `--json` reports.
    Compare { before: PathBuf, after: PathBuf },
}

#[derive(Args, Default)]
pub struct RehearseRunArgs {
    /// The site: http://host:port or https://host.
    #[arg(long)]
    pub target: Option<String>,
    /// Scenario file (TOML) with the same settings plus traffic classes; flags override it.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Constant arrival rate, requests per second (with --duration).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long at --rate (default 30s).
    #[arg(long)]
    pub duration: Option<String>,
    /// Stages instead of a constant rate: "ramp 0-2000 30s, hold 2m, drop".
    #[arg(long)]
    pub profile: Option<String>,
    /// URL list file: `PATH [weight=N] [group=NAME]` per line.
    #[arg(long)]
    pub urls: Option<PathBuf>,
    /// Discover URLs from the WordPress sitemap (/wp-sitemap.xml, or Yoast's /sitemap_index.xml).
    #[arg(long)]
    pub sitemap: bool,
    /// At most this many discovered URLs.
    #[arg(long)]
    pub max_urls: Option<usize>,
    /// Traffic mix by weight, e.g. anonymous=80,campaign=20 (shopper and logged_in need a scenario).
    #[arg(long)]
    pub mix: Option<String>,
    /// Requests in flight at most.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Requests in total at most.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Per-request timeout.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Also report each traffic class for the requests from this time on (e.g. "30s": once
    /// the cache is warm), apart from the whole run.
    #[arg(long)]
    pub warm_after: Option<String>,
    /// Connect HOST:PORT to ADDRESS (like curl), keeping Host and SNI.
    #[arg(long)]
    pub resolve: Vec<String>,
    /// Use HTTP/2 (ALPN on https, prior knowledge on http).
    #[arg(long)]
    pub http2: bool,
    /// Accept any TLS certificate (self-signed staging servers).
    #[arg(long)]
    pub insecure: bool,
    /// Send no browser headers. By default every request carries what a browser sends
    /// (Accept-Encoding: gzip, deflate, br; Accept; Accept-Language; a browser User-Agent),
    /// so the rehearsal sees the compression and the bytes real visitors cause. A scenario
    /// class can override them: headers = { "Accept-Encoding" = "gzip" }.
    #[arg(long)]
    pub raw: bool,
    /// Write the full result as JSON (for `compare`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No live progress.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). See README for a commented example.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Listen address (repeatable); overrides server.listen.
    #[arg(short, long)]
    pub listen: Vec<String>,
    /// Origin URL for the quick start (one site answering any host).
    #[arg(long)]
    pub origin: Option<String>,
    /// Cache profile for the quick start: `wordpress` (default) or `http` (strict RFC 9111).
    #[arg(long)]
    pub profile: Option<String>,
    /// Disk cache directory; overrides cache.disk_path.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Admin listen address; overrides admin.listen.
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Take over the listening sockets of a running peakguard (then send it SIGQUIT).
    #[arg(long)]
    pub upgrade: bool,
}

/// How to reach the admin API of a running edge.
#[derive(Args, Clone)]
pub struct AdminArgs {
    /// Admin API address (default: admin.listen from the configuration, else 127.0.0.1:9080).
    #[arg(long, env = "PEAKGUARD_ADMIN")]
    pub admin: Option<String>,
    /// Bearer token (default: admin.token, else the content of admin.token_file).
    #[arg(long, env = "PEAKGUARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Configuration file to read the admin address and token from.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct PurgeArgs {
    /// One page, every variant: `https://shop.example/product/x` (no scheme: both).
    #[arg(long, group = "what")]
    pub url: Option<String>,
    /// Every page under a URL prefix: `shop.example/product/`.
    #[arg(long, group = "what")]
    pub prefix: Option<String>,
    /// Every page whose origin response carried this tag (Cache-Tag / X-Cache-Tags).
    #[arg(long, group = "what")]
    pub tag: Option<String>,
    /// Everything.
    #[arg(long, group = "what")]
    pub all: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MaintenanceAction {
    On,
    Off,
    Status,
}

#[derive(Args)]
pub struct MaintenanceArgs {
    pub action: MaintenanceAction,
    /// Message shown on the maintenance page.
    #[arg(long)]
    pub message: Option<String>,
    /// Retry-After sent to visitors: `15m`, `90s`.
    #[arg(long)]
    pub retry_after: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ShieldAction {
    Status,
}

#[derive(Args)]
pub struct ShieldArgs {
    pub action: ShieldAction,
    /// Print the JSON the admin API answered.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoomAction {
    Status,
    QueueAll,
    Normal,
    Suspend,
    OpenAt,
    CancelOpening,
    RotateKey,
}

#[derive(Args)]
pub struct WaitingRoomArgs {
    pub action: RoomAction,
    /// For open-at: when the doors open (`2026-12-04T18:00:00Z` or Unix seconds).
    pub time: Option<String>,
    /// The site (needed when several sites have a waiting room).
    #[arg(long)]
    pub site: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: every problem with its key and line.
    Check { file: PathBuf },
}

#[derive(Args)]
pub struct DemoArgs {
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// Requests in flight at most (the rest wait their turn, counted from their arrival).
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Visitors arriving per second (the simulated origin serves about 27 pages a second).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
}
