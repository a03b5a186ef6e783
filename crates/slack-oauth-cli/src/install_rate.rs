//! `--install-rate-per-ip`: how often one client may load the install page, each load of which
//! stores a state. The live-state cap bounds the table; this keeps one client from using the
//! whole cap (and the 503 it leads to) for everybody else.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The TCP peer of a connection, put in each request's extensions by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// The per-client budget of install-page loads.
#[derive(Debug)]
pub(crate) struct InstallRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    install_path: String,
    client_ip_header: Option<HeaderName>,
    /// Unix seconds of the last "over the rate" log line: one a minute at most.
    last_logged: AtomicU64,
}

impl InstallRate {
    /// `per_minute` loads of `install_path` per client IP, refilled evenly over the minute (a
    /// burst of `per_minute` is allowed). The client IP is the rightmost address of
    /// `client_ip_header` when given (the one the proxy in front appended), else the TCP peer.
    pub(crate) fn new(
        per_minute: NonZeroU32,
        install_path: impl Into<String>,
        client_ip_header: Option<HeaderName>,
    ) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            install_path: install_path.into(),
            client_ip_header,
            last_logged: AtomicU64::new(0),
        }
    }

    /// Forgets clients whose budget is full again, so that memory follows the clients of the
    /// last minute rather than every client ever seen.
    pub(crate) fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many clients are tracked now.
    #[cfg(test)]
    pub(crate) fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }

    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        let forwarded = self.client_ip_header.as_ref().and_then(|name| {
            let values = request.headers().get_all(name);
            // The last header's last entry: what the nearest proxy saw, which a client cannot forge.
            let last = values.iter().next_back()?.to_str().ok()?;
            parse_ip(last.rsplit(',').next()?.trim())
        });
        forwarded.or_else(|| {
            request
                .extensions()
                .get::<PeerAddr>()
                .map(|peer| peer.0.ip())
        })
    }

    fn log_at_most_once_a_minute(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let last = self.last_logged.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "a client loaded the install page faster than --install-rate-per-ip allows; \
                 answering it 429 (logged once a minute)"
            );
        }
    }
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `203.0.113.7:51234`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// The middleware: a load of the install page over the client's budget is answered 429 with
/// `Retry-After`; every other request passes untouched.
pub(crate) async fn limit(
    State(rate): State<Arc<InstallRate>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == rate.install_path {
        if let Some(ip) = rate.client_ip(&request) {
            if let Err(not_until) = rate.limiter.check_key(&ip) {
                rate.log_at_most_once_a_minute();
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return too_many_requests(wait);
            }
        }
    }
    next.run(request).await
}

fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Body::from("Too many installation attempts from your address; try again in a minute.\n"),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, peer: &str, forwarded: Option<&str>) -> Request {
        let mut builder = Request::builder().uri(path);
        if let Some(forwarded) = forwarded {
            builder = builder.header("x-forwarded-for", forwarded);
        }
        let mut request = builder.body(Body::empty()).expect("a request");
        let peer: SocketAddr = peer.parse().expect("an address");
        request.extensions_mut().insert(PeerAddr(peer));
        request
    }

    #[test]
    fn the_client_is_the_peer_without_a_header() {
        let rate = InstallRate::new(NonZeroU32::MIN, "/slack/install", None);
        let request = request("/slack/install", "192.0.2.1:4000", Some("203.0.113.9"));
        assert_eq!(
            rate.client_ip(&request),
            Some("192.0.2.1".parse().expect("ip"))
        );
    }

    #[test]
    fn the_client_is_the_rightmost_forwarded_address_with_the_header() {
        let header = HeaderName::from_static("x-forwarded-for");
        let rate = InstallRate::new(NonZeroU32::MIN, "/slack/install", Some(header));
        // A client may send its own X-Forwarded-For; the proxy appends the real address.
        let spoofed = request(
            "/slack/install",
            "10.0.0.2:80",
            Some("1.2.3.4, 203.0.113.9"),
        );
        assert_eq!(
            rate.client_ip(&spoofed),
            Some("203.0.113.9".parse().expect("ip"))
        );
        let v6 = request("/slack/install", "10.0.0.2:80", Some("[2001:db8::1]:443"));
        assert_eq!(
            rate.client_ip(&v6),
            Some("2001:db8::1".parse().expect("ip"))
        );
        let garbage = request("/slack/install", "10.0.0.2:80", Some("unknown"));
        assert_eq!(
            rate.client_ip(&garbage),
            Some("10.0.0.2".parse().expect("ip"))
        );
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let rate = InstallRate::new(
            NonZeroU32::new(60_000).expect("non-zero"),
            "/slack/install",
            None,
        );
        for last in 0..=255u8 {
            let ip = IpAddr::from([192, 0, 2, last]);
            assert!(rate.limiter.check_key(&ip).is_ok());
        }
        assert_eq!(rate.tracked_clients(), 256);
        // One request of a 60,000-a-minute budget refills in 1 ms.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rate.tracked_clients() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "clients never forgotten"
            );
            std::thread::sleep(Duration::from_millis(1));
            rate.forget_idle_clients();
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let response = too_many_requests(Duration::from_millis(1_200));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = too_many_requests(Duration::ZERO);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
