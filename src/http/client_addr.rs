//! The client's address: the socket peer, or — when the peer is a trusted proxy — the address
//! the proxies recorded in `X-Forwarded-For` or `Forwarded` (RFC 7239).
//!
//! Behind a load balancer every socket peer is the balancer, so the failed-login limiter would
//! lock everyone out together and the logs would name one address. But these headers are
//! written by whoever sent the request, so they are believed only from peers the operator
//! listed (`--trusted-proxies`), and only as far as the chain of trusted hops goes: walking the
//! list from the right (each proxy appends the address it saw), the first hop that is not a
//! trusted proxy is the client. Anything a client wrote further left is ignored.
//!
//! Only the one header the operator's proxies maintain is read (`--forwarded-header`): a proxy
//! that appends to `X-Forwarded-For` passes a client's own `Forwarded` header through untouched,
//! so reading both would let a client choose its address.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use clap::ValueEnum;
use ipnet::IpNet;

/// The client address of a request, put in its extensions before anything else runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which header the trusted proxies maintain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most cloud balancers).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    #[value(name = "forwarded")]
    Forwarded,
}

/// The peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDRs (`10.0.0.0/8, 192.168.1.7`); a bare address is one host.
    fn from_str(s: &str) -> Result<Self, String> {
        let nets = s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("'{part}' is not an address or CIDR such as 10.0.0.0/8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies {
            nets,
            header: ForwardedHeader::default(),
        })
    }
}

impl TrustedProxies {
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.nets.iter().any(|net| net.contains(&addr))
    }

    /// The client behind a request that came from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Several header lines form one list, in order (RFC 9110 §5.3).
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let hops = values.iter().flat_map(|v| v.split(',')).rev();
        let mut nearest = peer;
        for hop in hops {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_node),
            };
            // A hop that names no address (`unknown`, an obfuscated name, garbage) ends what
            // can be known: the nearest trusted hop stands for the client.
            let Some(addr) = parsed else {
                return nearest;
            };
            if !self.trusts(addr) {
                return addr;
            }
            nearest = addr;
        }
        nearest
    }
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value)
    })
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, optionally quoted.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"').trim();
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let bracketed = node.strip_prefix('[')?.strip_suffix(']')?;
    bracketed
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|a| IpAddr::V6(a).to_canonical())
}

/// Middleware: finds the client address once, for the limiter and the request logs.
pub async fn resolve_client_addr(
    State(trusted): State<std::sync::Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let client = trusted.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(trusted.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().unwrap();
        // The client wrote "1.1.1.1" itself; the proxies appended what they saw.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "192.168.1.7"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Every hop trusted: the left-most one is as far as the chain goes.
        let h = headers("x-forwarded-for", &["10.9.9.9,192.168.1.7"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Garbage ends the chain at the nearest trusted hop.
        let h = headers("x-forwarded-for", &["203.0.113.9, nonsense"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
        // Ports and IPv6.
        let h = headers("x-forwarded-for", &["[2001:db8::5]:443, 203.0.113.9:5000"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        let h = headers("x-forwarded-for", &["2001:db8::5"]);
        assert_eq!(trusted.client(ip("::ffff:10.1.2.3"), &h), ip("2001:db8::5"));
    }

    #[test]
    fn forwarded_is_read_only_when_chosen() {
        let xff: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let fwd = xff.clone().with_header(ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=1.1.1.1;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.2"#],
        );
        assert_eq!(fwd.client(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        assert_eq!(xff.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(fwd.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn proxy_lists_parse() {
        let t: TrustedProxies = " 10.0.0.0/8 ,::1, 192.168.0.5/24".parse().unwrap();
        assert!(t.trusts(ip("10.255.0.1")));
        assert!(t.trusts(ip("::1")));
        assert!(t.trusts(ip("192.168.0.200")));
        assert!(!t.trusts(ip("192.168.1.1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
    }
}
