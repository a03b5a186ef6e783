//! Incoming request bodies (Events API JSON, slash-command and interactivity forms): any bytes
//! are read or refused with an error, never a panic, and a parsed request always names a
//! workspace or an org.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slack_oauth::authorize::Incoming;

fuzz_target!(|body: &[u8]| {
    if let Ok(Incoming::Authorize(request)) = Incoming::parse(body) {
        assert!(
            request.team_id.is_some() || request.enterprise_id.is_some(),
            "a request that names no workspace was accepted"
        );
        // Debug output must stay printable for logs.
        let _ = format!("{request:?}");
    }
});
