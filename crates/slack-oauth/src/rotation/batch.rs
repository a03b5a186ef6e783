//! `rotate_all`: rotates every expiring stored installation, as a stream of events.

use std::collections::HashSet;

use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc;

use super::rotator::window;
use super::{Rotation, RotationError};
use crate::ids::{EnterpriseId, TeamId, UserId};
use crate::installation::Installation;
use crate::store::{InstallationQuery, InstallationStore};

/// How [`rotate_all`] runs.
///
/// The budget of `oauth.v2.access` calls is the [`Rotation`]'s
/// ([`Rotation::max_per_minute`], shared through the store by every instance).
///
/// ```
/// use slack_oauth::rotation::BatchOptions;
/// let options = BatchOptions { concurrency: 4, ..BatchOptions::default() };
/// assert_eq!(options.minutes_before_expiration, 120);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Rotate tokens expiring within this many minutes (default 120).
    pub minutes_before_expiration: u32,
    /// Installations rotated at once (default 16; 0 is taken as 1).
    pub concurrency: usize,
    /// Report what would be rotated ([`RotationEvent::WouldRotate`]) without refreshing.
    pub dry_run: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            minutes_before_expiration: 120,
            concurrency: 16,
            dry_run: false,
        }
    }
}

/// Which installation an event is about (ids only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationIds {
    /// The org, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// The workspace; `None` for org-wide installs.
    pub team_id: Option<TeamId>,
    /// The installing user.
    pub user_id: UserId,
}

impl InstallationIds {
    fn of(installation: &Installation) -> Self {
        Self {
            enterprise_id: installation.enterprise_id.clone(),
            team_id: installation.team_id.clone(),
            user_id: installation.user_id.clone(),
        }
    }
}

/// What happened to one installation, or to the batch. The library never prints; render these
/// as you like (redact installations first: [`Installation::redacted`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RotationEvent {
    /// The batch starts: `total` installations have a token due.
    Planned {
        /// Installations listed.
        total: usize,
    },
    /// Tokens of one installation were rotated.
    Rotated {
        /// The fresh installation (holds tokens: redact before printing). When another item
        /// of the same workspace rotated the shared bot, the bot fields are as listed.
        installation: Box<Installation>,
        /// Whether this item refreshed the bot token.
        bot: bool,
        /// Whether this item refreshed the user token.
        user: bool,
    },
    /// Nothing was due any more (another instance, or an earlier item sharing the bot, did
    /// it), or another instance holds the token's lease and is refreshing it now.
    NotNeeded {
        /// Which installation.
        ids: InstallationIds,
    },
    /// Dry run: these tokens would be refreshed.
    WouldRotate {
        /// Which installation.
        ids: InstallationIds,
        /// Whether the bot token is due (counted once per workspace or org).
        bot: bool,
        /// Whether the user token is due.
        user: bool,
    },
    /// A due token of this installation is marked as needing a reinstall (now, or by an
    /// earlier run): it was not sent to Slack. The workspace (or user) must install the app
    /// again.
    NeedsReinstall {
        /// Which installation.
        ids: InstallationIds,
        /// Which token.
        token: super::TokenKind,
        /// Why (Slack's error, or `answer_lost (...)`).
        reason: String,
    },
    /// Rotating one installation failed (the batch goes on).
    Failed {
        /// Which installation (no ids at all when listing the store failed).
        ids: Option<InstallationIds>,
        /// Slack's error string when there is one, else the error message.
        error: String,
    },
    /// The batch is over.
    Finished {
        /// The counts.
        summary: BatchSummary,
    },
}

/// Counts of one [`rotate_all`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchSummary {
    /// Installations listed as due.
    pub planned: usize,
    /// Installations with at least one token rotated.
    pub rotated: usize,
    /// Bot tokens refreshed.
    pub bot_tokens: usize,
    /// User tokens refreshed.
    pub user_tokens: usize,
    /// Installations with nothing due any more.
    pub not_needed: usize,
    /// Installations that would be rotated (dry run).
    pub would_rotate: usize,
    /// Installations that failed.
    pub failed: usize,
    /// Installations with a due token marked as needing a reinstall.
    pub needs_reinstall: usize,
}

/// Rotates every stored installation with a token expiring within the window, soonest first,
/// `concurrency` at a time within the rotation's budget of `oauth.v2.access` calls
/// ([`Rotation::max_per_minute`]; a batch leaves 5% of it to authorize-time refreshes). A bot
/// shared by several users' installations of one workspace is refreshed once. Each rotation
/// goes through [`Rotation::rotate_installation`], so several instances may run this at once:
/// a token whose lease another instance holds is skipped (reported as
/// [`RotationEvent::NotNeeded`]) rather than waited for, so instances walking the same list
/// share it out; should that holder fail, the token is still due at the next pass.
///
/// The stream yields [`RotationEvent::Planned`] first and [`RotationEvent::Finished`] last;
/// dropping it stops the batch (rotations already started still complete and save).
///
/// ```
/// use futures::StreamExt as _;
/// use slack_oauth::api::{Client, ClientCredentials};
/// use slack_oauth::rotation::{rotate_all, BatchOptions, Rotation, RotationEvent, TokenRotator};
/// use slack_oauth::store::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder().base_url("http://127.0.0.1:9/api/").build()?;
/// let rotator = TokenRotator::new(client, ClientCredentials::new("111.222", "secret"));
/// let rotation = Rotation::new(rotator, MemoryStore::new());
/// let events: Vec<_> = rotate_all(rotation, BatchOptions::default()).collect().await;
/// assert!(matches!(events[0], RotationEvent::Planned { total: 0 }));
/// assert!(matches!(&events[1], RotationEvent::Finished { summary } if summary.planned == 0));
/// # Ok(())
/// # }
/// ```
pub fn rotate_all<S>(
    rotation: Rotation<S>,
    options: BatchOptions,
) -> impl Stream<Item = RotationEvent> + Send
where
    S: InstallationStore + Clone + 'static,
{
    rotate_all_until(rotation, options, std::future::pending())
}

/// [`rotate_all`] that stops cleanly when `stop` resolves (a shutdown signal): no installation
/// is started after that, the rotations under way complete and save, and the stream ends with
/// [`RotationEvent::Finished`] counting what was done (`planned` still counts every listed
/// installation).
///
/// ```
/// use futures::StreamExt as _;
/// use slack_oauth::api::{Client, ClientCredentials};
/// use slack_oauth::rotation::{rotate_all_until, BatchOptions, Rotation, RotationEvent, TokenRotator};
/// use slack_oauth::store::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder().base_url("http://127.0.0.1:9/api/").build()?;
/// let rotator = TokenRotator::new(client, ClientCredentials::new("111.222", "secret"));
/// let rotation = Rotation::new(rotator, MemoryStore::new());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let events = rotate_all_until(rotation, BatchOptions::default(), async move {
///     let _ = stopped.await;
/// });
/// drop(stop); // a shutdown signal
/// let events: Vec<_> = events.collect().await;
/// assert!(matches!(events.last(), Some(RotationEvent::Finished { .. })));
/// # Ok(())
/// # }
/// ```
pub fn rotate_all_until<S>(
    rotation: Rotation<S>,
    options: BatchOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = RotationEvent> + Send
where
    S: InstallationStore + Clone + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let driver =
        futures::stream::once(run(rotation, options, sender, stop)).filter_map(|()| async { None });
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (event, receiver))
    });
    futures::stream::select(driver, events)
}

/// One listed installation and what is due on it.
struct Item {
    installation: Installation,
    bot: bool,
    user: bool,
}

async fn run<S>(
    rotation: Rotation<S>,
    options: BatchOptions,
    events: mpsc::Sender<RotationEvent>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) where
    S: InstallationStore + Clone + 'static,
{
    let rotation = rotation
        .minutes_before_expiration(options.minutes_before_expiration)
        .proactive();
    let rotator = rotation.rotator().clone();
    let minutes = options.minutes_before_expiration;
    let mut summary = BatchSummary::default();
    let deadline = rotator.now() + window(minutes);
    let listed = match rotation.store().list_expiring(deadline).await {
        Ok(listed) => listed,
        Err(error) => {
            let _ = events.send(RotationEvent::Planned { total: 0 }).await;
            summary.failed = 1;
            let failed = RotationEvent::Failed {
                ids: None,
                error: error.to_string(),
            };
            let _ = events.send(failed).await;
            let _ = events.send(RotationEvent::Finished { summary }).await;
            return;
        }
    };
    // One refresh per bot: only the first installation of a workspace or org counts it.
    let mut bots = HashSet::new();
    let items: Vec<Item> = listed
        .into_iter()
        .map(|installation| {
            let bot_due = installation.bot_token.is_some()
                && rotator.due(installation.bot_token_expires_at, minutes)
                && bots.insert(InstallationQuery::for_installation(&installation).without_user());
            let user_due = installation.user_token.is_some()
                && rotator.due(installation.user_token_expires_at, minutes);
            Item {
                installation,
                bot: bot_due,
                user: user_due,
            }
        })
        .collect();
    summary.planned = items.len();
    if events
        .send(RotationEvent::Planned { total: items.len() })
        .await
        .is_err()
    {
        return;
    }
    // Once `stop` resolves no item is started; those under way finish (buffer_unordered).
    let mut outcomes = futures::stream::iter(items)
        .take_until(Box::pin(stop))
        .map(|item| {
            let rotation = rotation.clone();
            let dry_run = options.dry_run;
            async move { rotate_one(&rotation, item, dry_run).await }
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some(event) = outcomes.next().await {
        count(&mut summary, &event);
        if events.send(event).await.is_err() {
            return;
        }
    }
    let _ = events.send(RotationEvent::Finished { summary }).await;
}

async fn rotate_one<S>(rotation: &Rotation<S>, item: Item, dry_run: bool) -> RotationEvent
where
    S: InstallationStore + Clone + 'static,
{
    let ids = InstallationIds::of(&item.installation);
    if !item.bot && !item.user {
        return RotationEvent::NotNeeded { ids };
    }
    let marked = [
        (
            item.bot,
            super::TokenKind::Bot,
            &item.installation.bot_needs_reinstall,
        ),
        (
            item.user,
            super::TokenKind::User,
            &item.installation.user_needs_reinstall,
        ),
    ];
    for (due, token, flag) in marked {
        if let (true, Some(flag)) = (due, flag) {
            return RotationEvent::NeedsReinstall {
                ids,
                token,
                reason: flag.reason.clone(),
            };
        }
    }
    if dry_run {
        return RotationEvent::WouldRotate {
            ids,
            bot: item.bot,
            user: item.user,
        };
    }
    let mut installation = item.installation;
    let listed_bot_expiry = installation.bot_token_expires_at;
    if !item.bot {
        // The bot is another item's (or not due): leave it to that item.
        installation.bot_token_expires_at = None;
    }
    let before = installation.clone();
    match rotation.rotate_installation(&installation).await {
        Ok(mut fresh) => {
            let bot = fresh.bot_refresh_token != before.bot_refresh_token;
            let user = fresh.user_refresh_token != before.user_refresh_token;
            if !item.bot {
                fresh.bot_token_expires_at = listed_bot_expiry;
            }
            if bot || user {
                RotationEvent::Rotated {
                    installation: Box::new(fresh),
                    bot,
                    user,
                }
            } else {
                RotationEvent::NotNeeded { ids }
            }
        }
        Err(error) => match marked_token(&error) {
            Some((token, reason)) => RotationEvent::NeedsReinstall { ids, token, reason },
            None => RotationEvent::Failed {
                ids: Some(ids),
                error: describe(&error),
            },
        },
    }
}

/// The token and reason when `error` (or the failed half of a partial rotation, whose other
/// half was saved) is a token marked as needing a reinstall.
fn marked_token(error: &RotationError) -> Option<(super::TokenKind, String)> {
    match error {
        RotationError::NeedsReinstall { token, reason } => Some((*token, reason.clone())),
        RotationError::Partial { error, .. } => marked_token(error),
        _ => None,
    }
}

fn describe(error: &RotationError) -> String {
    error
        .slack_error()
        .map_or_else(|| error.to_string(), str::to_owned)
}

fn count(summary: &mut BatchSummary, event: &RotationEvent) {
    match event {
        RotationEvent::Rotated { bot, user, .. } => {
            summary.rotated += 1;
            summary.bot_tokens += usize::from(*bot);
            summary.user_tokens += usize::from(*user);
        }
        RotationEvent::NotNeeded { .. } => summary.not_needed += 1,
        RotationEvent::WouldRotate { .. } => summary.would_rotate += 1,
        RotationEvent::Failed { .. } => summary.failed += 1,
        RotationEvent::NeedsReinstall { .. } => summary.needs_reinstall += 1,
        RotationEvent::Planned { .. } | RotationEvent::Finished { .. } => {}
    }
}
