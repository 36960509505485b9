//! Addresses as people type them: `HOST[:PORT]`, where HOST is a name (`localhost`,
//! `camera.local`), an IPv4 address or a bracketed IPv6 one (`[::1]`), and a left-out port
//! means [`DEFAULT_PORT`].

use std::net::{SocketAddr, ToSocketAddrs};

use thiserror::Error;

/// The port udpix listens on and sends to when an address gives none.
pub const DEFAULT_PORT: u16 = 7878;

/// Why an address cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AddrError {
    /// Nothing was given.
    #[error("no address given: use HOST or HOST:PORT, e.g. 192.0.2.7:7878")]
    Empty,
    /// The port part is not a port number.
    #[error(
        "`{0}` has no valid port: use HOST or HOST:PORT with a port of 1-65535, e.g. 192.0.2.7:7878"
    )]
    BadPort(String),
    /// A `[` without its `]`, or text after the `]` that is not `:PORT`.
    #[error("`{0}` is not an address: write IPv6 addresses in brackets, e.g. [::1] or [::1]:7878")]
    BadBrackets(String),
    /// The name does not resolve.
    #[error("cannot resolve `{addr}` ({reason}): give HOST or HOST:PORT, e.g. 127.0.0.1:7878")]
    Resolve {
        /// The address as given.
        addr: String,
        /// What the resolver said.
        reason: String,
    },
    /// The name resolves to nothing.
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    /// Port 0 picks a free port when listening but names no one to send to.
    #[error(
        "port 0 cannot be sent to (`{0}`): give the receiver's port, e.g. HOST:7878, or leave it out for 7878"
    )]
    PortZero(String),
}

/// Splits `HOST[:PORT]` into the host (without brackets) and the port, [`DEFAULT_PORT`]
/// when none is given. An IPv6 address without brackets (`::1`) is taken whole as a host.
pub fn split(s: &str) -> Result<(String, u16), AddrError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AddrError::Empty);
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| AddrError::BadPort(s.to_owned()))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AddrError::BadBrackets(s.to_owned()))?;
        if host.is_empty() {
            return Err(AddrError::BadBrackets(s.to_owned()));
        }
        return match after {
            "" => Ok((host.to_owned(), DEFAULT_PORT)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_owned(), port(p)?)),
                None => Err(AddrError::BadBrackets(s.to_owned())),
            },
        };
    }
    match s.split_once(':') {
        // Two colons or more: an IPv6 address without brackets, and so without a port.
        Some((_, rest)) if rest.contains(':') => Ok((s.to_owned(), DEFAULT_PORT)),
        Some(("", _)) => Err(AddrError::BadPort(s.to_owned())),
        Some((host, p)) => Ok((host.to_owned(), port(p)?)),
        None => Ok((s.to_owned(), DEFAULT_PORT)),
    }
}

/// `HOST:PORT` as the resolver takes it (IPv6 in brackets), the port filled in.
pub fn with_port(s: &str) -> Result<String, AddrError> {
    let (host, port) = split(s)?;
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

fn first(
    given: &str,
    mut addrs: impl Iterator<Item = SocketAddr>,
) -> Result<SocketAddr, AddrError> {
    // A name may resolve to both families; the first the resolver gives is taken.
    addrs
        .next()
        .ok_or_else(|| AddrError::NoAddress(given.to_owned()))
}

fn resolve_blocking(s: &str) -> Result<SocketAddr, AddrError> {
    let full = with_port(s)?;
    let addrs = full.to_socket_addrs().map_err(|e| AddrError::Resolve {
        addr: s.trim().to_owned(),
        reason: e.to_string(),
    })?;
    first(s.trim(), addrs)
}

/// An address to listen on (port 0: any free one). Names resolve, blocking: for the
/// command line, before anything runs.
pub fn listen(s: &str) -> Result<SocketAddr, AddrError> {
    resolve_blocking(s)
}

/// An address to send to, blocking as [`listen`]; port 0 is refused.
pub fn peer(s: &str) -> Result<SocketAddr, AddrError> {
    refuse_port_zero(s, resolve_blocking(s)?)
}

/// [`peer`] without blocking the runtime.
pub async fn resolve_peer(s: &str) -> Result<SocketAddr, AddrError> {
    let full = with_port(s)?;
    let addrs = tokio::net::lookup_host(full)
        .await
        .map_err(|e| AddrError::Resolve {
            addr: s.trim().to_owned(),
            reason: e.to_string(),
        })?;
    refuse_port_zero(s, first(s.trim(), addrs)?)
}

fn refuse_port_zero(given: &str, a: SocketAddr) -> Result<SocketAddr, AddrError> {
    if a.port() == 0 {
        return Err(AddrError::PortZero(given.trim().to_owned()));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_out_port_is_7878() {
        let ok = |s: &str| split(s).expect(s);
        assert_eq!(ok("192.0.2.7"), ("192.0.2.7".into(), 7878));
        assert_eq!(ok("192.0.2.7:9000"), ("192.0.2.7".into(), 9000));
        assert_eq!(ok(" camera.local "), ("camera.local".into(), 7878));
        assert_eq!(ok("[::1]"), ("::1".into(), 7878));
        assert_eq!(ok("[::1]:9000"), ("::1".into(), 9000));
        assert_eq!(ok("::1"), ("::1".into(), 7878));
        assert_eq!(ok("host:0"), ("host".into(), 0));
        assert_eq!(with_port("[::1]").as_deref(), Ok("[::1]:7878"));
        assert_eq!(with_port("::1").as_deref(), Ok("[::1]:7878"));
        assert_eq!(with_port("localhost").as_deref(), Ok("localhost:7878"));
    }

    #[test]
    fn malformed_addresses_say_how_to_write_one() {
        assert_eq!(split(""), Err(AddrError::Empty));
        assert!(matches!(split("host:x"), Err(AddrError::BadPort(_))));
        assert!(matches!(split("host:70000"), Err(AddrError::BadPort(_))));
        assert!(matches!(split(":7878"), Err(AddrError::BadPort(_))));
        assert!(matches!(split("[::1"), Err(AddrError::BadBrackets(_))));
        assert!(matches!(split("[::1]x"), Err(AddrError::BadBrackets(_))));
        assert!(matches!(split("[]:1"), Err(AddrError::BadBrackets(_))));
    }

    #[test]
    fn literals_and_localhost_resolve_and_port_zero_is_no_peer() {
        assert_eq!(listen("127.0.0.1"), Ok(([127, 0, 0, 1], 7878).into()));
        assert_eq!(listen("0.0.0.0:0"), Ok(([0, 0, 0, 0], 0).into()));
        assert_eq!(
            listen("[::1]:9000"),
            Ok("[::1]:9000".parse().expect("addr"))
        );
        let local = peer("localhost:9000").expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 9000, "{local}");
        assert_eq!(peer("localhost").map(|a| a.port()), Ok(7878));
        assert_eq!(
            peer("127.0.0.1:0"),
            Err(AddrError::PortZero("127.0.0.1:0".into()))
        );
        assert!(
            peer("127.0.0.1:0")
                .unwrap_err()
                .to_string()
                .contains("port 0 cannot be sent to")
        );
    }
}
