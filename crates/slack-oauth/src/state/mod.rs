//! CSRF protection for the install flow: the `state` and the cookie binding it to the browser.
//!
//! An install starts by issuing a random state into a [`StateStore`](crate::store::StateStore)
//! (single use, expires after `state_expiration`) and handing it to the browser twice: in the
//! authorize URL, which Slack echoes back on the redirect, and in an `HttpOnly` cookie. The callback
//! accepts the redirect only when both agree ([`StateCookie::is_valid_browser`]) and the store
//! consumes the state, so a link forged by someone else, opened in another browser, or replayed,
//! is refused (RFC 9700 §4.7).

mod cookie;

pub use self::cookie::{StateCookie, UnsafeStateValue};
