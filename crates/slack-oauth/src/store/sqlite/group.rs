//! Group commit: writes that arrive together share one SQLite transaction.
//!
//! A commit in WAL mode appends every page the transaction changed to the WAL, one `pwrite` per
//! page header and page. Concurrent install flows write the same few pages (the end of
//! `oauth_states` and its indexes, the end of `slack_installations`...), so committing them
//! together writes each page once per group instead of once per write. Measured on the install
//! flow benchmark, SQLite's page writes were a third of `serve`'s CPU before grouping.
//!
//! The first writer to arrive becomes the *leader*: it yields once, so that the other tasks
//! ready to run reach their writes and queue them, takes the process's write lock, and runs its
//! own write and every queued one in one `BEGIN IMMEDIATE` transaction, each inside a savepoint
//! (a failing write is rolled back alone and retried by its owner through the pool). Writers that
//! find a leader queue a copy of their statements and wait for its answer. A leader whose future
//! is dropped before it took the queue hands it back: the queued writers see their answer
//! dropped and start over. Once the leader took the queue it runs it to the end without awaiting,
//! so nothing is left half done.

use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use super::inline::InlineConnections;
use super::write::Statement;

/// How many more groups a leader runs for writers that queued while it was running.
const MAX_EXTRA_GROUPS: usize = 4;

/// What a queued writer gets back: the rows each statement changed, or `None` when it must run
/// its write itself through the pool.
type Answer = Option<Vec<u64>>;

/// One queued write.
struct Queued {
    statements: Vec<Statement<'static>>,
    answer: oneshot::Sender<Answer>,
}

/// The writers waiting for the current leader.
#[derive(Default)]
pub(super) struct WriteQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    leading: bool,
    queued: Vec<Queued>,
}

/// What a writer must do.
pub(super) enum Role<'q> {
    /// Lead a group. Dropping the guard before [`LeaderGuard::run`] hands the queue back.
    Leader(LeaderGuard<'q>),
    /// Wait for the leader's answer.
    Follower(oneshot::Receiver<Answer>),
}

impl WriteQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Becomes the leader, or queues a copy of `statements` behind the current one.
    pub(super) fn join(&self, statements: &[Statement<'_>]) -> Role<'_> {
        let mut state = self.state();
        if state.leading {
            let (answer, receiver) = oneshot::channel();
            state.queued.push(Queued {
                statements: statements
                    .iter()
                    .map(Statement::to_owned_statement)
                    .collect(),
                answer,
            });
            Role::Follower(receiver)
        } else {
            state.leading = true;
            Role::Leader(LeaderGuard {
                queue: self,
                armed: true,
            })
        }
    }
}

/// A leadership. Dropped while armed (the leader's future was dropped before it ran the
/// group), it resigns and drops the queued answers' senders: each queued writer wakes with an
/// error and joins again.
pub(super) struct LeaderGuard<'q> {
    queue: &'q WriteQueue,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let queued = {
                let mut state = self.queue.state();
                state.leading = false;
                std::mem::take(&mut state.queued)
            };
            drop(queued);
        }
    }
}

impl LeaderGuard<'_> {
    /// Takes the queued writes, or resigns when there are none (in one step under the queue's
    /// lock, so a writer queueing concurrently is either taken or becomes the next leader).
    fn take_or_resign(&mut self) -> Vec<Queued> {
        let mut state = self.queue.state();
        if state.queued.is_empty() {
            state.leading = false;
            self.armed = false;
        }
        std::mem::take(&mut state.queued)
    }

    /// Runs the leader's own write and the queued ones, in groups, until the queue is empty or
    /// [`MAX_EXTRA_GROUPS`] more groups ran, then resigns (handing any rest back). Returns the
    /// leader's own answer and the number of commits made.
    /// Synchronous: call it holding the process's write lock.
    pub(super) fn run(
        mut self,
        inline: &InlineConnections,
        own: &[Statement<'_>],
    ) -> (Answer, u64) {
        let mut own = Some(own);
        let mut own_answer = None;
        let mut commits = 0;
        // The first group holds the leader's own write; the next ones, writers that queued
        // while a group ran (from other worker threads), a few at most: then the guard's drop
        // hands the rest back, so that a steady stream of writers never keeps one leader (and
        // its own request) from returning.
        for _ in 0..=MAX_EXTRA_GROUPS {
            if own.is_none() && !self.armed {
                break;
            }
            let queued = self.take_or_resign();
            let mut groups: Vec<&[Statement<'_>]> = own.take().into_iter().collect();
            let leads_with_own = !groups.is_empty();
            groups.extend(queued.iter().map(|q| q.statements.as_slice()));
            if groups.is_empty() {
                break;
            }
            let (answers, committed) = inline.write_group(&groups);
            commits += u64::from(committed);
            let mut answers = answers.into_iter();
            if leads_with_own {
                own_answer = answers.next().flatten();
            }
            answer(queued, answers);
        }
        (own_answer, commits)
    }
}

fn answer(queued: Vec<Queued>, answers: impl Iterator<Item = Answer>) {
    for (write, answer) in queued.into_iter().zip(answers) {
        // A writer that stopped waiting had its write made all the same: nothing to do.
        let _ = write.answer.send(answer);
    }
}
