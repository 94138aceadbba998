//! Who the client is, and what it may see: lists of networks (CIDR), the real client
//! address behind trusted proxies, and the request ID every request carries.
//!
//! OS concept: the address a socket's `getpeername(2)` reports is the last hop, not
//! necessarily the client. Behind another balancer every request comes from that
//! balancer's address; only the hops we trust (`--trust-proxy`) may tell us, through
//! `X-Forwarded-For`, who was before them. nginx's realip module with
//! `real_ip_recursive on` reads the header the same way: from the right, skipping
//! trusted addresses, and the first untrusted one is the client.

use std::net::IpAddr;
use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::http1::fields::list_items;

/// `X-Request-Id`, as nginx's `$request_id` and Envoy's `x-request-id` call it.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A list of networks, such as `--admin-allow 10.0.0.0/8 --admin-allow ::1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList(Vec<IpNet>);

impl NetList {
    pub fn new(nets: Vec<IpNet>) -> Self {
        NetList(nets)
    }

    /// Whether `address` is in one of the networks. IPv4 clients that reach an IPv6
    /// socket (`::ffff:10.0.0.1`) count as their IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    /// 127.0.0.0/8 and ::1: the machine itself, the default for the admin pages (as
    /// Envoy's admin port and HAProxy's stats socket are meant to be reached locally).
    pub fn loopback() -> Self {
        NetList(vec![
            parse_net("127.0.0.0/8").expect("a valid network"),
            parse_net("::1").expect("a valid address"),
        ])
    }
}

impl std::fmt::Display for NetList {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(formatter, "{}", nets.join(", "))
    }
}

/// Who the balancer believes and whom it shows its inside to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRules {
    /// Peers whose `X-Forwarded-For` is believed (`--trust-proxy`).
    pub trust_proxy: NetList,
    /// Clients that may see the admin pages, the `x-roundhouse-*` headers and the
    /// backends' errors (`--admin-allow`; loopback when none is given).
    pub admin_allow: NetList,
}

impl Default for ClientRules {
    fn default() -> Self {
        ClientRules {
            trust_proxy: NetList::default(),
            admin_allow: NetList::loopback(),
        }
    }
}

impl ClientRules {
    /// The client of a request from `peer` with `headers` (see `real_client`).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        real_client(peer, headers, &self.trust_proxy)
    }

    /// Whether `client` may see the admin pages and the debugging details.
    pub fn is_admin(&self, client: IpAddr) -> bool {
        self.admin_allow.contains(client)
    }
}

/// One network in CIDR form; a bare address is a network of one (`10.0.0.1` is
/// `10.0.0.1/32`), as in nginx's `allow` and `set_real_ip_from`.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = IpNet::from_str(text) {
        return Ok(net.trunc());
    }
    IpAddr::from_str(text)
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not a network like 10.0.0.0/8 or an address like 10.0.0.1"))
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not itself trusted (every trusted hop is
/// skipped). An entry that is not an address ends the walk at the last trusted hop, so
/// garbage in the header can never choose the address.
pub fn real_client(peer: IpAddr, headers: &HeaderMap, trusted: &NetList) -> IpAddr {
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let entries: Vec<&str> = list_items(headers, HeaderName::from_static("x-forwarded-for")).collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(address) = parse_forwarded_address(entry) else {
            break;
        };
        client = address;
        if !trusted.contains(address) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]` or with a
/// port (`1.2.3.4:5678`, `[2001:db8::1]:5678`), as proxies in the wild write them.
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The request ID to use: the client's own `X-Request-Id` when it is a sane token
/// (visible ASCII, 1 to 128 characters), else a new random 128-bit one in hex.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(given) = headers.get(&X_REQUEST_ID) {
        let bytes = given.as_bytes();
        if !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|byte| (0x21..=0x7e).contains(byte)) {
            return given.clone();
        }
    }
    // 32 hex digits written by hand: `format!` costs more than the number itself.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let id = next_request_id();
    let mut text = [0u8; 32];
    for (index, digit) in text.iter_mut().enumerate() {
        *digit = HEX[((id >> (124 - 4 * index)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&text).expect("hex is a valid header value")
}

/// A new 128-bit request ID: a process-wide counter, mixed with a key drawn at random
/// once per process.
///
/// Why not `rand::random()` on the thread that needs it: that gives every connection
/// thread its own cryptographic generator, seeded from the kernel on first use, and with
/// thousands of connection threads the seeding and the generator's state cost memory in
/// every one of them (measured: 20 MiB more RSS with 2,000 keep-alive connections). A
/// request ID needs to be unique and not guessable, not secret: the counter makes it
/// unique within the process (the mixing is a bijection), the random key makes it
/// differ between processes and hard to predict. The mixing is SplitMix64's finaliser,
/// applied to each half.
fn next_request_id() -> u128 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (high_key, low_key) = *KEY.get_or_init(rand::random);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix = |mut value: u64| {
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    };
    let step = count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let high = mix(high_key.wrapping_add(step));
    let low = mix(low_key.wrapping_add(step));
    (u128::from(high) << 64) | u128::from(low)
}

/// Appends the `Forwarded` element (RFC 7239) for this hop to `out`:
/// `for=...;host=...;proto=...`. `client_text` is the client's address as text (the
/// caller has it already, for X-Forwarded-For); IPv6 addresses are bracketed and quoted
/// (`for="[2001:db8::1]"`); a host with a port, or anything that is not a plain token,
/// is quoted. Written into one buffer: this runs for every request.
pub fn push_forwarded_element(
    out: &mut String,
    client: IpAddr,
    client_text: &str,
    host: Option<&HeaderValue>,
    proto: &str,
) {
    out.push_str("for=");
    match client {
        IpAddr::V4(_) => out.push_str(client_text),
        IpAddr::V6(_) => {
            out.push_str("\"[");
            out.push_str(client_text);
            out.push_str("]\"");
        }
    }
    if let Some(host) = host.and_then(|host| host.to_str().ok()) {
        out.push_str(";host=");
        push_quoted_if_needed(out, host);
    }
    out.push_str(";proto=");
    out.push_str(proto);
}

/// The `Forwarded` element alone, as a string (for tests and one-off callers).
pub fn forwarded_element(client: IpAddr, host: Option<&HeaderValue>, proto: &str) -> String {
    let client = client.to_canonical();
    let mut element = String::new();
    push_forwarded_element(&mut element, client, &client.to_string(), host, proto);
    element
}

/// A token as it is, anything else as a quoted-string (RFC 9110 section 5.6.4).
fn push_quoted_if_needed(out: &mut String, value: &str) {
    let is_tchar = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if !value.is_empty() && value.bytes().all(is_tchar) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map;

    fn nets(list: &[&str]) -> NetList {
        NetList::new(list.iter().map(|net| parse_net(net).unwrap()).collect())
    }

    #[test]
    fn networks_parse_and_match() {
        let list = nets(&["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"]);
        assert!(list.contains("10.200.3.4".parse().unwrap()));
        assert!(list.contains("192.168.1.7".parse().unwrap()));
        assert!(!list.contains("192.168.1.8".parse().unwrap()));
        assert!(list.contains("::1".parse().unwrap()));
        assert!(list.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("localhost").is_err());
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_for_entry_is_the_client() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let headers = header_map(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(
            real_client(peer, &headers, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer's header is not believed.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(real_client(stranger, &headers, &trusted), stranger);
        // Garbage stops the walk at the last trusted hop.
        let garbage = header_map(&[("x-forwarded-for", "203.0.113.9, not-an-ip, 10.1.1.1")]);
        assert_eq!(
            real_client(peer, &garbage, &trusted),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
        let bracketed = header_map(&[("x-forwarded-for", "[2001:db8::7]:4000")]);
        assert_eq!(
            real_client(peer, &bracketed, &trusted),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(real_client(peer, &headers, &NetList::default()), peer);
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let kept = header_map(&[("x-request-id", "abc-123")]);
        assert_eq!(request_id(&kept), "abc-123");
        let spaced = header_map(&[("x-request-id", "a b")]);
        let made = request_id(&spaced);
        assert_eq!(made.len(), 32);
        assert!(
            made.to_str()
                .unwrap()
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit())
        );
        let many: std::collections::HashSet<HeaderValue> =
            (0..10_000).map(|_| request_id(&HeaderMap::new())).collect();
        assert_eq!(many.len(), 10_000, "every ID is new");
        let long = header_map(&[("x-request-id", &"x".repeat(129))]);
        assert_eq!(request_id(&long).len(), 32);
    }

    #[test]
    fn forwarded_elements_quote_what_needs_it() {
        let host = HeaderValue::from_static("example.test:8080");
        assert_eq!(
            forwarded_element("192.0.2.1".parse().unwrap(), Some(&host), "http"),
            "for=192.0.2.1;host=\"example.test:8080\";proto=http"
        );
        let plain = HeaderValue::from_static("example.test");
        assert_eq!(
            forwarded_element("2001:db8::1".parse().unwrap(), Some(&plain), "https"),
            "for=\"[2001:db8::1]\";host=example.test;proto=https"
        );
    }
}
