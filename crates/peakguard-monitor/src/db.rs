//! A connection to MariaDB/MySQL for the mariadb and wordpress probes (mysql_async): over the
//! Unix socket or TCP, the password from `password_file` (0600) or `password`. No TLS: the
//! probes are meant for the server on this machine or its private network.

use crate::probe::Problems;
use mysql_async::{Conn, OptsBuilder};
use peakguard_config::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// The keys of a database probe that say where and as whom it connects.
#[derive(Debug, Deserialize)]
pub(crate) struct Connection {
    /// The server's Unix socket (instead of `address`).
    socket: Option<PathBuf>,
    /// `host:port` to connect to.
    address: Option<String>,
    user: Option<String>,
    #[serde(default)]
    password: Secret,
    /// A file holding the password (0600; preferred over `password`).
    password_file: Option<PathBuf>,
    /// mariadb: the database to open (optional); wordpress: WordPress's database.
    pub(crate) database: Option<String>,
}

impl Connection {
    /// Problems of where and as whom a `kind` probe connects.
    pub(crate) fn check(&self, kind: &str) -> Problems {
        let mut problems: Problems = Vec::new();
        match (&self.address, &self.socket) {
            (None, None) => problems.push((
                "address".into(),
                format!(
                    "a {kind} probe needs `socket = \"/run/mysqld/mysqld.sock\"` or `address = \"127.0.0.1:3306\"`"
                ),
            )),
            (Some(_), Some(_)) => {
                problems.push(("socket".into(), "give `socket` or `address`, not both".into()))
            }
            (Some(a), None) => problems.extend(crate::probe::check_host_port(kind, Some(a))),
            (None, Some(_)) => {}
        }
        if self.user.is_none() {
            problems.push((
                "user".into(),
                format!("a {kind} probe needs `user = \"...\"`"),
            ));
        }
        problems
    }
}

/// Opens a connection as the probe says; the error is a sentence for the result.
pub(crate) async fn connect(probe: &Connection) -> Result<Conn, String> {
    let password = match &probe.password_file {
        Some(path) => peakguard_config::private_fs::read_private(path)
            .map_err(|e| format!("password_file: {e}"))?
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        None => probe.password.expose().to_string(),
    };
    let mut opts = OptsBuilder::default()
        .user(probe.user.clone())
        .pass((!password.is_empty()).then_some(password))
        .db_name(probe.database.clone())
        .prefer_socket(false)
        .stmt_cache_size(0)
        .pool_opts(None);
    let place = match (&probe.socket, &probe.address) {
        (Some(socket), _) => {
            let path = socket.display().to_string();
            opts = opts.socket(Some(path.clone()));
            path
        }
        (None, Some(address)) => {
            let (host, port) = address
                .rsplit_once(':')
                .and_then(|(h, p)| {
                    p.parse::<u16>()
                        .ok()
                        .map(|p| (h.trim_matches(['[', ']']), p))
                })
                .ok_or_else(|| format!("{address:?} is not host:port"))?;
            opts = opts.ip_or_hostname(host).tcp_port(port);
            address.clone()
        }
        (None, None) => return Err("no socket or address".into()),
    };
    Conn::new(opts)
        .await
        .map_err(|e| format!("cannot connect to {place}: {e}"))
}
