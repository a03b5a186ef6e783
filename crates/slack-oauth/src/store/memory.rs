//! `MemoryStore`: installations, bots, states and leases kept in process memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    new_state_value, InstallationQuery, InstallationStore, LeaseAcquisition, LostGrant,
    RotatedToken, StateStore, StoreError, TokenUpdate,
};
use crate::clock::{Clock, SystemClock};
use crate::ids::{EnterpriseId, TeamId, UserId};
use crate::installation::{Bot, Installation};
use crate::secret::{RefreshToken, StateValue};

/// Every how many `issue` calls expired states are purged, so that states that are issued but
/// never consumed (abandoned installs, bots hitting the install page) cannot pile up.
const PURGE_EVERY: u64 = 64;

/// An installation and state store in process memory: for tests and short-lived single
/// processes. Everything is lost when the last clone is dropped.
///
/// Clones share the same data. Unlike the SQL stores it is not scoped by a client id, and it
/// keeps [`custom_values`](Installation::custom_values) and `installed_at` with full precision.
/// Semantics are those of the [module docs](super); history is kept, so memory grows with every
/// save (call [`delete_installation`](InstallationStore::delete_installation) to prune).
///
/// ```
/// use slack_oauth::store::{MemoryStore, StateStore};
/// use time::{Duration, OffsetDateTime};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
/// let state = store.issue(now + Duration::minutes(10)).await?;
/// assert!(store.consume(&state, now).await?);
/// assert!(!store.consume(&state, now).await?, "a state is single use");
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
    clock: Arc<dyn Clock>,
}

/// One org or workspace: `(enterprise_id, team_id)`, `None` meaning "no org" / "no team".
type Scope = (Option<EnterpriseId>, Option<TeamId>);

#[derive(Default)]
struct Tables {
    /// Insertion counter: breaks `installed_at` ties (newest row wins), like an SQL `id`.
    next_row: u64,
    scopes: BTreeMap<Scope, Workspace>,
    states: HashMap<String, OffsetDateTime>,
    issued: u64,
    leases: HashMap<String, Lease>,
    /// The `oauth.v2.access` calls of the last minute.
    refresh_budget: super::budget::SlidingWindow,
}

#[derive(Default)]
struct Workspace {
    installations: Vec<Row<Installation>>,
    bots: Vec<Row<Bot>>,
}

struct Row<T> {
    row: u64,
    value: T,
}

struct Lease {
    holder: String,
    until: OffsetDateTime,
    /// The fingerprint of a refresh token the holder is redeeming or may have redeemed.
    intent: Option<String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            tables: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for the occasional purge of expired states in [`issue`](StateStore::issue)
    /// and for lease expiry (the store's clock decides leases, not the callers').
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that breaks
        // later operations (each operation edits whole rows), so poisoning is ignored.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = self.tables();
        let (installations, bots) = tables.scopes.values().fold((0, 0), |(i, b), w| {
            (i + w.installations.len(), b + w.bots.len())
        });
        f.debug_struct("MemoryStore")
            .field("installations", &installations)
            .field("bots", &bots)
            .field("states", &tables.states.len())
            .field("leases", &tables.leases.len())
            .finish_non_exhaustive()
    }
}

/// The scope a query looks in: org-wide queries ignore the team.
fn query_scope(query: &InstallationQuery) -> Scope {
    (query.enterprise_id.clone(), query.lookup_team_id().cloned())
}

/// The latest of `rows`: newest `installed_at`, then newest row.
fn latest<'a, T: 'a>(
    rows: impl IntoIterator<Item = &'a Row<T>>,
    installed_at: impl Fn(&T) -> OffsetDateTime,
) -> Option<&'a Row<T>> {
    rows.into_iter()
        .max_by_key(|row| (installed_at(&row.value), row.row))
}

impl Workspace {
    fn latest_bot(&self) -> Option<&Bot> {
        latest(&self.bots, |bot| bot.installed_at).map(|row| &row.value)
    }

    fn latest_installation(&self, user_id: Option<&UserId>) -> Option<&Installation> {
        let rows = self
            .installations
            .iter()
            .filter(|row| user_id.is_none_or(|user| row.value.user_id == *user));
        latest(rows, |i| i.installed_at).map(|row| &row.value)
    }

    /// The latest installation (of one user, or of anyone), with the bot merge applied.
    fn find_installation(&self, user_id: Option<&UserId>) -> Option<Installation> {
        let mut found = self.latest_installation(user_id)?.clone();
        if user_id.is_some() || found.bot_token.is_none() {
            if let Some(bot) = self.latest_bot() {
                found.merge_bot(bot);
            }
        }
        Some(found)
    }
}

impl InstallationStore for MemoryStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        let mut installation = installation.clone();
        // A new version starts unflagged: a reinstall clears the mark.
        installation.bot_needs_reinstall = None;
        installation.user_needs_reinstall = None;
        if installation.is_enterprise_install {
            installation.team_id = None;
        }
        let scope = (
            installation.enterprise_id.clone(),
            installation.team_id.clone(),
        );
        let bot = installation.to_bot();
        let mut tables = self.tables();
        let row = tables.next_row;
        tables.next_row += 2;
        let workspace = tables.scopes.entry(scope).or_default();
        workspace.installations.push(Row {
            row,
            value: installation,
        });
        if let Some(bot) = bot {
            workspace.bots.push(Row {
                row: row + 1,
                value: bot,
            });
        }
        Ok(())
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        let mut bot = bot.clone();
        bot.needs_reinstall = None;
        if bot.is_enterprise_install {
            bot.team_id = None;
        }
        let scope = (bot.enterprise_id.clone(), bot.team_id.clone());
        let mut tables = self.tables();
        let row = tables.next_row;
        tables.next_row += 1;
        let workspace = tables.scopes.entry(scope).or_default();
        workspace.bots.push(Row { row, value: bot });
        Ok(())
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        let tables = self.tables();
        Ok(tables
            .scopes
            .get(&query_scope(query))
            .and_then(Workspace::latest_bot)
            .cloned())
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        let tables = self.tables();
        Ok(tables
            .scopes
            .get(&query_scope(query))
            .and_then(|workspace| workspace.find_installation(query.user_id.as_ref())))
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if let Some(workspace) = tables.scopes.get_mut(&query_scope(query)) {
            workspace.bots.clear();
        }
        Ok(())
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if let Some(workspace) = tables.scopes.get_mut(&query_scope(query)) {
            match &query.user_id {
                Some(user_id) => workspace
                    .installations
                    .retain(|row| row.value.user_id != *user_id),
                None => workspace.installations.clear(),
            }
        }
        Ok(())
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        let tables = self.tables();
        let mut all = Vec::new();
        for workspace in tables.scopes.values() {
            let users: BTreeMap<&UserId, ()> = workspace
                .installations
                .iter()
                .map(|row| (&row.value.user_id, ()))
                .collect();
            all.extend(
                users
                    .keys()
                    .filter_map(|user| workspace.find_installation(Some(user))),
            );
        }
        Ok(all)
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        Ok(expiring_by(self.list_installations().await?, deadline))
    }

    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        Ok(update_rotated_token(&mut self.tables(), update))
    }

    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let saved = update_rotated_token(&mut tables, update);
        release_lease(&mut tables, name, holder);
        Ok(saved)
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseAcquisition, StoreError> {
        let now = self.clock.now();
        let until = after(now, ttl);
        let mut tables = self.tables();
        let pending_intent = match tables.leases.get(name) {
            Some(lease) if lease.until > now && lease.holder != holder => {
                return Ok(LeaseAcquisition::Busy)
            }
            Some(lease) => lease.intent.clone(),
            None => None,
        };
        let lease = Lease {
            holder: holder.to_owned(),
            until,
            intent: pending_intent.clone(),
        };
        tables.leases.insert(name.to_owned(), lease);
        Ok(LeaseAcquisition::Held { pending_intent })
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let until = after(now, ttl);
        let mut tables = self.tables();
        match tables.leases.get_mut(name) {
            Some(lease) if lease.holder == holder && lease.until > now => {
                lease.intent = Some(fingerprint.to_owned());
                lease.until = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        release_lease(&mut self.tables(), name, holder);
        Ok(())
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tables = self.tables();
        if let Some(lease) = tables.leases.get_mut(name) {
            if lease.holder == holder {
                if lease.intent.is_some() {
                    lease.until = now;
                } else {
                    tables.leases.remove(name);
                }
            }
        }
        Ok(())
    }

    async fn flag_reinstall(&self, grant: &LostGrant) -> Result<bool, StoreError> {
        let scope = (grant.enterprise_id.clone(), grant.team_id.clone());
        let lost = grant.refresh_token.secret();
        let holds = |token: &Option<RefreshToken>| token.as_ref().map(|t| t.secret()) == Some(lost);
        let mut tables = self.tables();
        let Some(workspace) = tables.scopes.get_mut(&scope) else {
            return Ok(false);
        };
        let mut flagged = false;
        match &grant.user_id {
            None => {
                for row in &mut workspace.installations {
                    let i = &mut row.value;
                    if holds(&i.bot_refresh_token) && i.bot_needs_reinstall.is_none() {
                        i.bot_needs_reinstall = Some(grant.flag.clone());
                        flagged = true;
                    }
                }
                for row in &mut workspace.bots {
                    let bot = &mut row.value;
                    if holds(&bot.bot_refresh_token) && bot.needs_reinstall.is_none() {
                        bot.needs_reinstall = Some(grant.flag.clone());
                        flagged = true;
                    }
                }
            }
            Some(user_id) => {
                for row in &mut workspace.installations {
                    let i = &mut row.value;
                    if i.user_id == *user_id
                        && holds(&i.user_refresh_token)
                        && i.user_needs_reinstall.is_none()
                    {
                        i.user_needs_reinstall = Some(grant.flag.clone());
                        flagged = true;
                    }
                }
            }
        }
        Ok(flagged)
    }

    async fn spend_refresh_budget(&self, limit: u32) -> Result<super::BudgetSpend, StoreError> {
        let now = self.clock.now();
        Ok(self.tables().refresh_budget.spend(now, limit))
    }
}

/// Writes a refreshed token in every version still holding the previous refresh token.
fn update_rotated_token(tables: &mut Tables, update: &TokenUpdate) -> bool {
    let scope = (update.enterprise_id.clone(), update.team_id.clone());
    let previous = update.previous_refresh_token.secret();
    let Some(workspace) = tables.scopes.get_mut(&scope) else {
        return false;
    };
    let mut changed = false;
    match &update.token {
        RotatedToken::Bot { token } => {
            for row in &mut workspace.installations {
                let i = &mut row.value;
                if i.bot_refresh_token.as_ref().map(|t| t.secret()) == Some(previous) {
                    i.bot_token = Some(token.clone());
                    i.bot_refresh_token = Some(update.refresh_token.clone());
                    i.bot_token_expires_at = update.expires_at;
                    changed = true;
                }
            }
            for row in &mut workspace.bots {
                let bot = &mut row.value;
                if bot.bot_refresh_token.as_ref().map(|t| t.secret()) == Some(previous) {
                    bot.bot_token = token.clone();
                    bot.bot_refresh_token = Some(update.refresh_token.clone());
                    bot.bot_token_expires_at = update.expires_at;
                    changed = true;
                }
            }
        }
        RotatedToken::User { user_id, token } => {
            for row in &mut workspace.installations {
                let i = &mut row.value;
                if i.user_id == *user_id
                    && i.user_refresh_token.as_ref().map(|t| t.secret()) == Some(previous)
                {
                    i.user_token = Some(token.clone());
                    i.user_refresh_token = Some(update.refresh_token.clone());
                    i.user_token_expires_at = update.expires_at;
                    changed = true;
                }
            }
        }
    }
    changed
}

/// `now + ttl`, saturating at the end of time.
fn after(now: OffsetDateTime, ttl: Duration) -> OffsetDateTime {
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .unwrap_or(OffsetDateTime::new_utc(
            time::Date::MAX,
            time::Time::MIDNIGHT,
        ))
}

/// Removes the lease if `holder` holds it.
fn release_lease(tables: &mut Tables, name: &str, holder: &str) {
    if tables
        .leases
        .get(name)
        .is_some_and(|lease| lease.holder == holder)
    {
        tables.leases.remove(name);
    }
}

/// The installations holding a token that expires by `deadline`, soonest first; a stable
/// sort, so equal expiries keep the order of the listing (org / team / user). Every store's
/// `list_expiring` ends here, after reading (and on SQL stores, loosely filtering) its rows.
pub(crate) fn expiring_by(
    installations: Vec<Installation>,
    deadline: OffsetDateTime,
) -> Vec<Installation> {
    let mut expiring: Vec<(OffsetDateTime, Installation)> = installations
        .into_iter()
        .filter_map(|i| {
            soonest_expiry(&i)
                .filter(|at| *at <= deadline)
                .map(|at| (at, i))
        })
        .collect();
    expiring.sort_by_key(|(at, _)| *at);
    expiring.into_iter().map(|(_, i)| i).collect()
}

/// The earliest expiry among the tokens an installation holds.
pub(crate) fn soonest_expiry(installation: &Installation) -> Option<OffsetDateTime> {
    let bot = installation
        .bot_token
        .as_ref()
        .and(installation.bot_token_expires_at);
    let user = installation
        .user_token
        .as_ref()
        .and(installation.user_token_expires_at);
    match (bot, user) {
        (Some(bot), Some(user)) => Some(bot.min(user)),
        (bot, user) => bot.or(user),
    }
}

impl StateStore for MemoryStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        let state = new_state_value();
        let mut tables = self.tables();
        tables.issued += 1;
        if tables.issued % PURGE_EVERY == 0 {
            let now = self.clock.now();
            tables.states.retain(|_, expires_at| *expires_at > now);
        }
        tables.states.insert(state.secret().to_owned(), expires_at);
        Ok(state)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let valid = tables
            .states
            .get(state.secret())
            .is_some_and(|expires_at| *expires_at > now);
        if valid {
            tables.states.remove(state.secret());
        }
        Ok(valid)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut tables = self.tables();
        let before = tables.states.len();
        tables.states.retain(|_, expires_at| *expires_at > now);
        Ok((before - tables.states.len()) as u64)
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let tables = self.tables();
        Ok(tables.states.values().filter(|at| **at > now).count() as u64)
    }
}
