//! The conformance suite on `MemoryStore`.

use slack_oauth::store::MemoryStore;

slack_oauth_test::store_conformance!(suite, async { MemoryStore::new() });
