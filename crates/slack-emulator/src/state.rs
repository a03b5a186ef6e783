//! The emulator's shared state: its clock, the codes and tokens it issued, faults and counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{EmulatorConfig, Grant};
use crate::faults::{Fault, Faults};
use crate::tokens::{self, Pkce, TokenKind};

/// What the emulator has seen since it started (or since
/// [`reset_counters`](crate::Emulator::reset_counters)). A snapshot: later calls do not change it.
///
/// A refresh token redeemed twice shows up either as a `refresh_redemptions` value above 1
/// (served again within the grace period) or in `spent_refresh_token_reuse` (refused).
///
/// ```
/// let counters = slack_emulator::Counters::default();
/// assert_eq!(counters.calls.get("oauth.v2.access"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls per Web API method name (`"oauth.v2.access"`, `"auth.test"`, …), faulted ones included.
    pub calls: BTreeMap<String, u64>,
    /// Authorization codes issued (approved `authorize` requests and `issue_code`).
    pub codes_issued: u64,
    /// Codes successfully redeemed with `oauth.v2.access`.
    pub codes_redeemed: u64,
    /// Successful refreshes (`grant_type=refresh_token`), including ones served in the grace period.
    pub refreshes_served: u64,
    /// Spent refresh tokens served again because they were still within `refresh_grace`.
    pub refreshes_in_grace: u64,
    /// Spent refresh tokens presented after their grace period (answered `invalid_refresh_token`).
    pub spent_refresh_token_reuse: u64,
    /// Successful redemptions per refresh token, keyed by
    /// [`refresh_token_key`](crate::refresh_token_key).
    pub refresh_redemptions: BTreeMap<String, u64>,
    /// When each refresh token arrived in an `oauth.v2.access` call (before any injected
    /// latency; accepted, refused or faulted, except calls turned away with a 429), in the
    /// emulator's Unix time, keyed like `refresh_redemptions`: two arrivals close together mean
    /// two holders sent it at once.
    pub refresh_presented_at: BTreeMap<String, Vec<Presentation>>,
}

/// One `oauth.v2.access` call carrying a refresh token, as the emulator saw it.
///
/// ```
/// use std::time::Duration;
/// use slack_emulator::Presentation;
///
/// let first = Presentation { sent_at: Duration::from_secs(10), done_at: None };
/// let soon = Presentation { sent_at: Duration::from_secs(11), done_at: None };
/// let later = Presentation { sent_at: Duration::from_secs(21), done_at: None };
/// // With a 10 s deadline, a send 1 s after an unanswered one overlaps it; 11 s after does not.
/// assert!(first.overlaps(&soon, Duration::from_secs(10)));
/// assert!(!first.overlaps(&later, Duration::from_secs(10)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// When it arrived (before any injected latency): when the client sent it.
    pub sent_at: Duration,
    /// When the emulator was done with it: answered, broke the connection, or was dropped
    /// because the client went away. `None` while in progress.
    pub done_at: Option<Duration>,
}

impl Presentation {
    /// Whether `next` (a later send of the same token) went out while this one could still be
    /// in flight for a client that gives up after `deadline`: before this one was answered and
    /// before its deadline passed.
    pub fn overlaps(&self, next: &Presentation, deadline: Duration) -> bool {
        let free_at = self.done_at.map_or(self.sent_at + deadline, |done| {
            done.min(self.sent_at + deadline)
        });
        next.sent_at < free_at
    }
}

/// A token's place in its family ([`Emulator::token_generation`]).
///
/// ```
/// use slack_emulator::TokenGeneration;
/// let install = TokenGeneration { family: 1, generation: 0 };
/// let refreshed = TokenGeneration { family: 1, generation: 1 };
/// assert!(refreshed > install);
/// ```
///
/// [`Emulator::token_generation`]: crate::Emulator::token_generation
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenGeneration {
    /// The family: every token descended from one install or exchange.
    pub family: u64,
    /// 0 for the install's pair, one more per refresh.
    pub generation: usize,
}

/// What the emulator knows of a refresh token ([`Emulator::refresh_token_status`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use slack_emulator::{Emulator, EmulatorConfig, RefreshTokenStatus};
/// let slack = Emulator::spawn(EmulatorConfig { rotation: true, ..Default::default() }).await?;
/// let (_access, refresh) = slack.seed_refresh_token(&Default::default(), false);
/// assert_eq!(slack.refresh_token_status(&refresh), RefreshTokenStatus::Live);
/// assert_eq!(slack.refresh_token_status("xoxe-1-unknown"), RefreshTokenStatus::Unknown);
/// # Ok(())
/// # }
/// ```
///
/// [`Emulator::refresh_token_status`]: crate::Emulator::refresh_token_status
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshTokenStatus {
    /// Issued and never redeemed: the one live refresh token of its pair.
    Live,
    /// Redeemed once (a newer pair exists).
    Spent,
    /// Revoked (`auth.revoke`, a family revocation, or the active-token limit).
    Revoked,
    /// Never issued by this emulator.
    Unknown,
}

/// The emulator's own time: a monotonic clock plus an offset that tests move forward.
#[derive(Debug)]
pub(crate) struct EmuClock {
    start: Instant,
    start_unix: Duration,
    offset_nanos: AtomicU64,
}

impl EmuClock {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            // The emulator is a test tool, not library code: reading the wall clock once to
            // report Unix times is fine; everything else is measured on `Instant`.
            start_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            offset_nanos: AtomicU64::new(0),
        }
    }

    /// Time since the emulator started, plus every `advance`.
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed().saturating_add(Duration::from_nanos(
            self.offset_nanos.load(Ordering::SeqCst),
        ))
    }

    /// The emulator's notion of the current Unix time.
    pub(crate) fn unix(&self) -> Duration {
        self.start_unix.saturating_add(self.now())
    }

    pub(crate) fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .offset_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
                Some(old.saturating_add(nanos))
            });
    }
}

/// An authorization code waiting for `oauth.v2.access`.
#[derive(Debug)]
pub(crate) struct CodeRecord {
    pub(crate) grant: Arc<Grant>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) pkce: Option<Pkce>,
    pub(crate) issued_at: Duration,
}

/// An access token the emulator issued.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub(crate) grant: Arc<Grant>,
    pub(crate) kind: TokenKind,
    /// `None` for long-lived tokens.
    pub(crate) expires_at: Option<Duration>,
    pub(crate) revoked: bool,
    /// A long-lived token already traded with `oauth.v2.exchange`.
    pub(crate) exchanged: bool,
}

/// A refresh token the emulator issued.
#[derive(Debug)]
pub(crate) struct RefreshRecord {
    pub(crate) key: String,
    pub(crate) grant: Arc<Grant>,
    pub(crate) kind: TokenKind,
    pub(crate) family: u64,
    /// When it was first redeemed.
    pub(crate) spent_at: Option<Duration>,
    pub(crate) revoked: bool,
}

/// Every token descended from one install (or exchange) token, for family revocation and the
/// active-token limit.
#[derive(Debug, Default)]
pub(crate) struct Family {
    pub(crate) access: Vec<String>,
    pub(crate) refresh: Vec<String>,
    /// The long-lived token this family was exchanged from; it expires at the first refresh.
    pub(crate) legacy: Option<String>,
}

/// A freshly issued token (and its refresh token, when rotating).
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access: String,
    pub(crate) refresh: Option<String>,
    pub(crate) expires_in: Option<u64>,
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) latency: Duration,
    pub(crate) default_grant: Grant,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) access: HashMap<String, AccessRecord>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) families: HashMap<u64, Family>,
    next_family: u64,
    pub(crate) faults: Faults,
    pub(crate) counters: Counters,
}

/// State shared by the server task and every [`Emulator`](crate::Emulator) handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    /// `http://host:port/`.
    pub(crate) base_url: String,
    pub(crate) clock: EmuClock,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig, base_url: String) -> Self {
        let inner = Inner {
            latency: config.latency,
            default_grant: config.default_grant.clone(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            families: HashMap::new(),
            next_family: 1,
            faults: Faults::default(),
            counters: Counters::default(),
        };
        Self {
            config,
            base_url,
            clock: EmuClock::new(),
            inner: Mutex::new(inner),
        }
    }

    /// Locks the state. A panic elsewhere cannot leave it half-written in a way that matters to
    /// a test double, so poisoning is ignored rather than turned into more panics.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call of `method` and returns the latency to add and the fault to apply.
    pub(crate) fn begin_call(&self, method: &str) -> (Duration, Option<Fault>) {
        let mut inner = self.lock();
        *inner.counters.calls.entry(method.to_owned()).or_default() += 1;
        let fault = inner.faults.take(method);
        (inner.latency, fault)
    }

    /// Stores a new code for `grant`.
    pub(crate) fn issue_code(
        &self,
        grant: Grant,
        redirect_uri: Option<String>,
        client_id: Option<String>,
        pkce: Option<Pkce>,
    ) -> String {
        let code = tokens::code();
        let record = CodeRecord {
            grant: Arc::new(grant),
            redirect_uri,
            client_id,
            pkce,
            issued_at: self.clock.now(),
        };
        let mut inner = self.lock();
        inner.codes.insert(code.clone(), record);
        inner.counters.codes_issued += 1;
        code
    }

    /// A live token for `grant` without the HTTP dance: rotating (with a refresh token) or
    /// long-lived.
    pub(crate) fn seed(&self, grant: &Grant, kind: TokenKind, rotating: bool) -> Issued {
        let now = self.clock.now();
        let grant = Arc::new(grant.clone());
        let mut inner = self.lock();
        let family = rotating.then(|| inner.new_family(None));
        inner.issue(&self.config, &grant, kind, family, now)
    }
}

impl Inner {
    /// Starts a token family.
    pub(crate) fn new_family(&mut self, legacy: Option<String>) -> u64 {
        let id = self.next_family;
        self.next_family += 1;
        self.families.insert(
            id,
            Family {
                legacy,
                ..Family::default()
            },
        );
        id
    }

    /// Issues an access token: rotating (with a refresh token) inside `family`, or long-lived
    /// when `family` is `None`.
    pub(crate) fn issue(
        &mut self,
        config: &EmulatorConfig,
        grant: &Arc<Grant>,
        kind: TokenKind,
        family: Option<u64>,
        now: Duration,
    ) -> Issued {
        let access = tokens::access_token(kind, family.is_some());
        let Some(family) = family else {
            self.access.insert(
                access.clone(),
                AccessRecord {
                    grant: Arc::clone(grant),
                    kind,
                    expires_at: None,
                    revoked: false,
                    exchanged: false,
                },
            );
            return Issued {
                access,
                refresh: None,
                expires_in: None,
            };
        };
        let refresh = tokens::refresh_token();
        self.access.insert(
            access.clone(),
            AccessRecord {
                grant: Arc::clone(grant),
                kind,
                expires_at: Some(now.saturating_add(config.token_ttl)),
                revoked: false,
                exchanged: false,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshRecord {
                key: tokens::refresh_token_key(&refresh),
                grant: Arc::clone(grant),
                kind,
                family,
                spent_at: None,
                revoked: false,
            },
        );
        let entry = self.families.entry(family).or_default();
        entry.access.push(access.clone());
        entry.refresh.push(refresh.clone());
        if let Some(max) = config.max_active_tokens {
            self.enforce_active_limit(family, max.max(1), now);
        }
        Issued {
            access,
            refresh: Some(refresh),
            expires_in: Some(config.token_ttl.as_secs()),
        }
    }

    /// Revokes the oldest live access tokens of `family` beyond `max`.
    fn enforce_active_limit(&mut self, family: u64, max: usize, now: Duration) {
        let Some(entry) = self.families.get(&family) else {
            return;
        };
        let live: Vec<&String> = entry
            .access
            .iter()
            .filter(|token| {
                self.access
                    .get(*token)
                    .is_some_and(|record| !record.revoked && !record.is_expired(now))
            })
            .collect();
        let excess = live.len().saturating_sub(max);
        let doomed: Vec<String> = live.into_iter().take(excess).cloned().collect();
        for token in doomed {
            if let Some(record) = self.access.get_mut(&token) {
                record.revoked = true;
            }
        }
    }

    /// Revokes every access and refresh token of `family`.
    pub(crate) fn revoke_family(&mut self, family: u64) {
        let Some(entry) = self.families.get(&family) else {
            return;
        };
        for token in &entry.access {
            if let Some(record) = self.access.get_mut(token) {
                record.revoked = true;
            }
        }
        for token in &entry.refresh {
            if let Some(record) = self.refresh.get_mut(token) {
                record.revoked = true;
            }
        }
    }
}

impl AccessRecord {
    pub(crate) fn is_expired(&self, now: Duration) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}
