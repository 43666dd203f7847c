//! Where attacks and http probes never go, whatever the allow-list says:
//! loopback (a Lambda function's own Runtime API and its extensions listen
//! there), link-local addresses (the instance metadata service at
//! 169.254.169.254 and ECS task metadata at 169.254.170.2), the IPv6
//! metadata address and the unspecified address. An allow-listed name can
//! still resolve there, so the address is checked three times: the URL's
//! host when it is an address, what a name resolves to at Plan
//! ([`check_host`]), and what it resolves to when connecting (the
//! connector's resolver drops those addresses: a name may resolve
//! elsewhere by then).
//!
//! The local stack, whose targets are on loopback, opts out explicitly
//! with [`ALLOW_LOOPBACK_VAR`] in the functions' environment; nothing a
//! deployed stack sets turns this off.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

/// `true` in a function's environment lets attacks and http probes reach
/// loopback and link-local addresses: the local stack sets it, so its
/// demo API on 127.0.0.1 can be attacked. Never set it in AWS.
pub const ALLOW_LOOPBACK_VAR: &str = "TURBULENCE_LOCAL_ALLOW_LOOPBACK";

/// The IPv6 address of the instance metadata service.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254);
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// Why `ip` may never be reached, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    // `::ffff:127.0.0.1` is 127.0.0.1.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4 == METADATA_V4 => Some("the instance metadata service"),
        IpAddr::V4(v4) if v4.is_loopback() => Some(LOOPBACK),
        IpAddr::V4(v4) if v4.is_link_local() => Some(LINK_LOCAL),
        IpAddr::V4(v4) if v4.is_unspecified() => Some(UNSPECIFIED),
        IpAddr::V6(v6) if v6 == METADATA_V6 => Some("the instance metadata service"),
        IpAddr::V6(v6) if v6.is_loopback() => Some(LOOPBACK),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(LINK_LOCAL),
        IpAddr::V6(v6) if v6.is_unspecified() => Some(UNSPECIFIED),
        _ => None,
    }
}

const LOOPBACK: &str =
    "a loopback address (the function's own Runtime API and extensions listen there)";
const LINK_LOCAL: &str = "a link-local address (instance and task metadata live there)";
const UNSPECIFIED: &str = "the unspecified address (it reaches the function's own host)";

/// The host of a URL (`[::1]` without its brackets) as an address, if it
/// is one.
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Refuse a URL host that is a forbidden address.
pub(crate) fn check_literal(host: &str, allow_loopback: bool) -> Result<(), String> {
    match literal(host).and_then(forbidden) {
        Some(why) if !allow_loopback => Err(format!("{host} is {why}")),
        _ => Ok(()),
    }
}

/// Plan's check: refuse `host` when it is, or now resolves to, an address
/// that may never be reached. A name that does not resolve reaches
/// nothing, so it passes here (its requests fail to connect).
pub async fn check_host(host: &str, port: u16, allow_loopback: bool) -> Result<(), String> {
    if allow_loopback {
        return Ok(());
    }
    check_literal(host, false)?;
    if literal(host).is_some() {
        return Ok(());
    }
    let Ok(addresses) = tokio::net::lookup_host((host, port)).await else {
        return Ok(());
    };
    for address in addresses {
        if let Some(why) = forbidden(address.ip()) {
            return Err(format!("{host} resolves to {}, {why}", address.ip()));
        }
    }
    Ok(())
}

/// The connector's resolver: the system's (`getaddrinfo`, as hyper-util's
/// default), without the addresses that may never be reached. A name left
/// with none fails to connect, naming why.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    inner: GaiResolver,
    allow_loopback: bool,
}

impl GuardedResolver {
    pub fn new(allow_loopback: bool) -> GuardedResolver {
        GuardedResolver {
            inner: GaiResolver::new(),
            allow_loopback,
        }
    }
}

type Addresses = std::vec::IntoIter<SocketAddr>;

impl Service<Name> for GuardedResolver {
    type Response = Addresses;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Addresses>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_string();
        let lookup = self.inner.call(name);
        Box::pin(async move {
            let all: Vec<SocketAddr> = lookup.await?.collect();
            if allow_loopback {
                return Ok(all.into_iter());
            }
            let (kept, dropped): (Vec<_>, Vec<_>) =
                all.into_iter().partition(|a| forbidden(a.ip()).is_none());
            match (kept.is_empty(), dropped.first()) {
                (true, Some(address)) => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves to {}, {}: not connecting",
                        address.ip(),
                        forbidden(address.ip()).unwrap_or("forbidden")
                    ),
                )),
                _ => Ok(kept.into_iter()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_metadata_and_unspecified_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.10.0.1",
            "169.254.169.254",
            "169.254.170.2",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "93.184.216.34",
            "fd00::1",
            "2600::1",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
        assert_eq!(
            forbidden("169.254.169.254".parse().unwrap()),
            Some("the instance metadata service")
        );
    }

    #[test]
    fn a_literal_host_is_checked_unless_the_local_stack_opts_out() {
        assert!(check_literal("[::1]", false)
            .unwrap_err()
            .contains("loopback"));
        assert!(check_literal("169.254.169.254", false)
            .unwrap_err()
            .contains("instance metadata"));
        assert!(check_literal("127.0.0.1", true).is_ok());
        assert!(check_literal("api.example.com", false).is_ok());
    }

    #[tokio::test]
    async fn a_name_is_checked_by_what_it_resolves_to() {
        let e = check_host("localhost", 80, false).await.unwrap_err();
        assert!(e.starts_with("localhost resolves to "), "{e}");
        assert!(e.contains("loopback"), "{e}");
        assert!(check_host("localhost", 80, true).await.is_ok());
        // Nothing to resolve to: nothing is reached.
        assert!(check_host("no-such-host.invalid", 80, false).await.is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        let mut guarded = GuardedResolver::new(false);
        let name: Name = "localhost".parse().unwrap();
        let err = guarded.call(name.clone()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("not connecting"), "{err}");
        let mut open = GuardedResolver::new(true);
        assert!(open.call(name).await.unwrap().next().is_some());
    }
}
