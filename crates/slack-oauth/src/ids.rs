//! Slack identifiers: plain newtypes so that a team id is never passed where a user id belongs.
//!
//! They are not secret, so they implement `Display`. The text is shared (`Arc<str>`): a clone
//! (every cache hit of authorize clones a few) costs no allocation. Slack's own prefixes (`T…`, `E…`, `U…`/`W…`,
//! `B…`, `A…`) are not enforced: Slack documents ids as opaque strings.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $example:literal) => {
        $(#[$meta])*
        ///
        /// ```
        #[doc = concat!("let id = slack_oauth::ids::", stringify!($name), "::new(\"", $example, "\");")]
        #[doc = concat!("assert_eq!(id.as_str(), \"", $example, "\");")]
        #[doc = concat!("assert_eq!(id.to_string(), \"", $example, "\");")]
        /// ```
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an id.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0.to_string()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

id_type!(
    /// An app id (`A…`).
    AppId, "A0KRD7HC3"
);
id_type!(
    /// An Enterprise Grid organization id (`E…`).
    EnterpriseId, "E12345678"
);
id_type!(
    /// A workspace (team) id (`T…`).
    TeamId, "T9TK3CUKW"
);
id_type!(
    /// A user id (`U…` or `W…`).
    UserId, "U1234"
);
id_type!(
    /// A bot id (`B…`), as `auth.test` reports it.
    BotId, "BZYBOTHED"
);
id_type!(
    /// The app's OAuth client id (`111.222`). Not secret: it appears in every authorize URL.
    ClientId, "111.222"
);
