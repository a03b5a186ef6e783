//! `SqliteStore`: the conformance suite, plus what only SQLite has (encodings Python reads, rows
//! Python wrote, Python's DDL, one file under concurrent load).

slack_oauth_test::store_conformance!(suite, slack_oauth_test::sqlite::temporary());
