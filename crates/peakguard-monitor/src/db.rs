//! A connection to MariaDB/MySQL for the mariadb and wordpress probes (mysql_async): over the
//! Unix socket or TCP, the password from `password_file` (0600) or `password`. No TLS: the
//! probes are meant for the server on this machine or its private network.

use mysql_async::{Conn, OptsBuilder};
use peakguard_config::ProbeConfig;

/// Opens a connection as the probe says; the error is a sentence for the result.
pub(crate) async fn connect(probe: &ProbeConfig) -> Result<Conn, String> {
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
