//! `flight`'s lock under shuttle's model checker (`RUSTFLAGS="--cfg shuttle"`): the same
//! interface as the tokio one, built from shuttle's primitives so that it explores their
//! interleavings. A file of its own so that mutation testing, whose builds never compile it,
//! can leave it out.

use shuttle::future::batch_semaphore::{BatchSemaphore, Fairness};
pub(super) use shuttle::sync::{Arc, Mutex};

/// The same lock, from shuttle's semaphore (one permit) and mutex.
pub(super) struct Slot<V> {
    permit: BatchSemaphore,
    value: Mutex<Option<V>>,
}

pub(super) struct SlotGuard<'a, V>(&'a Slot<V>);

impl<V: Clone> Slot<V> {
    pub(super) fn new() -> Self {
        Self {
            permit: BatchSemaphore::new(1, Fairness::StrictlyFair),
            value: Mutex::new(None),
        }
    }

    pub(super) fn try_lock(&self) -> Option<SlotGuard<'_, V>> {
        self.permit.try_acquire(1).ok().map(|()| SlotGuard(self))
    }

    pub(super) async fn lock(&self) -> SlotGuard<'_, V> {
        self.permit.acquire(1).await.expect("never closed");
        SlotGuard(self)
    }
}

impl<V: Clone> SlotGuard<'_, V> {
    pub(super) fn get(&self) -> Option<V> {
        self.0.value.lock().expect("not poisoned").clone()
    }

    pub(super) fn set(&mut self, value: V) {
        *self.0.value.lock().expect("not poisoned") = Some(value);
    }
}

impl<V> Drop for SlotGuard<'_, V> {
    fn drop(&mut self) {
        self.0.permit.release(1);
    }
}
