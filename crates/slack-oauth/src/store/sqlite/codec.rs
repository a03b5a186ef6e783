//! Column values as slack_sdk writes and reads them: timestamps, scopes, flags, `''` for "none".
//!
//! Writing follows the rules that keep a shared database readable by Python
//! (docs/reference-sections.md §3.1.1 and §3.1.2): expiries as INTEGER seconds, `installed_at`
//! as UTC text, `''` for no org or team. Reading accepts everything any slack_sdk version may
//! have left behind; a value that still cannot be read is a [`StoreError::Corrupt`] naming the
//! table and column.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::encryption::{Field, Owner, TokenCipher};
use crate::installation::{ReinstallFlag, Scopes};
use crate::store::StoreError;

/// How `installed_at` is written: Python's `current_timestamp` text plus microseconds. The
/// fraction keeps sub-second order (and `installed_at` round trips); Python reads it, and text
/// order stays chronological next to Python's whole-second values (`…:09` < `…:09.250000`).
const INSTALLED_AT_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");

/// The date-time part of text timestamps Python may have written: `T` or space, optional
/// seconds, optional fraction of any length.
const DATETIME_TEXT: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day][first [ ][T]][hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
);

const DATE_TEXT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// One SQLite value with its runtime storage class (columns declared `datetime` or `boolean`
/// hold whatever was written: INTEGER, REAL or TEXT).
#[derive(Debug)]
pub(super) enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob,
}

/// A result row.
pub(super) type RowRef<'r> = &'r rusqlite::Row<'r>;

/// Reads the columns of one row of `table`, turning unreadable values into
/// [`StoreError::Corrupt`].
pub(super) struct Reader<'r> {
    pub(super) row: RowRef<'r>,
    pub(super) table: &'static str,
}

impl Reader<'_> {
    fn corrupt(&self, column: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            detail: format!("column {column}: {detail}"),
        }
    }

    fn cell(&self, column: &str) -> Result<Cell, StoreError> {
        use rusqlite::types::ValueRef;
        let value = self
            .row
            .get_ref(column)
            .map_err(|error| self.corrupt(column, error))?;
        Ok(match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Integer(n),
            ValueRef::Real(x) => Cell::Real(x),
            ValueRef::Text(bytes) => Cell::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| self.corrupt(column, "holds text that is not UTF-8"))?,
            ),
            ValueRef::Blob(_) => Cell::Blob,
        })
    }

    /// A text column; numbers are accepted as their decimal text.
    pub(super) fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Text(text) => Ok(Some(text)),
            Cell::Integer(n) => Ok(Some(n.to_string())),
            Cell::Real(x) => Ok(Some(x.to_string())),
            Cell::Blob => Err(self.corrupt(column, "holds a blob, expected text")),
        }
    }

    /// A text column where `''` (slack_sdk's "none" for ids) also means absent.
    pub(super) fn optional<T: From<String>>(&self, column: &str) -> Result<Option<T>, StoreError> {
        Ok(self.text(column)?.filter(|s| !s.is_empty()).map(T::from))
    }

    /// A token column (`column` in the row, `field` its name in `self.table`), opened when it
    /// is an envelope; `''` means absent, as for ids.
    pub(super) fn sealed<T: From<String>>(
        &self,
        column: &str,
        field: &'static str,
        cipher: &TokenCipher,
        owner: &Owner<'_>,
    ) -> Result<Option<T>, StoreError> {
        let Some(stored) = self.text(column)?.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let field = Field {
            table: self.table,
            column: field,
        };
        cipher
            .open(field, owner, stored)
            .map(|plain| Some(T::from(plain)))
            .map_err(|source| StoreError::Decrypt {
                table: self.table,
                source,
            })
    }

    /// A text column that must hold a value.
    pub(super) fn required(&self, column: &str) -> Result<String, StoreError> {
        self.text(column)?
            .ok_or_else(|| self.corrupt(column, "is NULL, expected a value"))
    }

    pub(super) fn scopes(&self, column: &str) -> Result<Scopes, StoreError> {
        Ok(parse_scopes(self.text(column)?.as_deref()))
    }

    /// A token expiry, in whole seconds.
    pub(super) fn expiry(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let at = parse_timestamp(&self.cell(column)?).map_err(|e| self.corrupt(column, e))?;
        Ok(at.map(|at| at.replace_nanosecond(0).unwrap_or(at)))
    }

    pub(super) fn installed_at(&self, column: &str) -> Result<OffsetDateTime, StoreError> {
        parse_timestamp(&self.cell(column)?)
            .map_err(|e| self.corrupt(column, e))?
            .ok_or_else(|| self.corrupt(column, "is NULL, expected a timestamp"))
    }

    /// A reinstall mark: the reason column and its time (Unix seconds); absent when the reason
    /// is NULL.
    pub(super) fn reinstall_flag(
        &self,
        reason: &str,
        at: &str,
    ) -> Result<Option<ReinstallFlag>, StoreError> {
        let Some(reason) = self.text(reason)? else {
            return Ok(None);
        };
        let flagged_at = parse_timestamp(&self.cell(at)?)
            .map_err(|e| self.corrupt(at, e))?
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(Some(ReinstallFlag::new(reason, flagged_at)))
    }

    /// A boolean written as 0/1 (or `true`/`false` text by other writers).
    pub(super) fn flag(&self, column: &str) -> Result<bool, StoreError> {
        match self.cell(column)? {
            Cell::Null => Ok(false),
            Cell::Integer(n) => Ok(n != 0),
            Cell::Real(x) => Ok(x != 0.0),
            Cell::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" => Ok(true),
                "0" | "false" | "f" | "no" | "" => Ok(false),
                _ => Err(self.corrupt(column, format_args!("{text:?} is not a boolean"))),
            },
            Cell::Blob => Err(self.corrupt(column, "holds a blob, expected a boolean")),
        }
    }
}

/// `installed_at` as written by this crate (see [`INSTALLED_AT_FORMAT`]).
pub(super) fn format_installed_at(at: OffsetDateTime) -> Result<String, StoreError> {
    at.to_offset(UtcOffset::UTC)
        .format(INSTALLED_AT_FORMAT)
        .map_err(|error| StoreError::Config(format!("installed_at {at} cannot be stored: {error}")))
}

/// A token expiry as written by this crate: INTEGER Unix seconds (Python cannot read REAL).
pub(super) fn expiry_seconds(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(OffsetDateTime::unix_timestamp)
}

/// `''` for "no org" / "no team", as slack_sdk's SQLite store writes and compares.
pub(super) fn id_or_empty<T: AsRef<str>>(id: Option<&T>) -> &str {
    id.map_or("", AsRef::as_ref)
}

/// Reads any timestamp slack_sdk may have written: INTEGER or REAL Unix seconds, numeric text,
/// or ISO-8601-like text (`T` or space, optional fraction, optional `Z` / `±HH:MM`, UTC when
/// naive, as Python reads it).
pub(super) fn parse_timestamp(cell: &Cell) -> Result<Option<OffsetDateTime>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Integer(seconds) => OffsetDateTime::from_unix_timestamp(*seconds)
            .map(Some)
            .map_err(|error| format!("{seconds} is not a valid Unix time: {error}")),
        Cell::Real(seconds) => from_seconds_f64(*seconds).map(Some),
        Cell::Text(text) => parse_timestamp_text(text).map(Some),
        Cell::Blob => Err("holds a blob, expected a timestamp".to_owned()),
    }
}

fn from_seconds_f64(seconds: f64) -> Result<OffsetDateTime, String> {
    crate::installation::from_unix_seconds_f64(seconds)
        .ok_or_else(|| format!("{seconds} is not a valid Unix time"))
}

fn parse_timestamp_text(text: &str) -> Result<OffsetDateTime, String> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<i64>() {
        return parse_timestamp(&Cell::Integer(seconds))
            .map(|at| at.unwrap_or(OffsetDateTime::UNIX_EPOCH));
    }
    if let Ok(seconds) = trimmed.parse::<f64>() {
        return from_seconds_f64(seconds);
    }
    let unreadable = || format!("{text:?} is not a timestamp");
    let (naive, offset) = split_offset(trimmed).ok_or_else(unreadable)?;
    let local = PrimitiveDateTime::parse(naive, DATETIME_TEXT)
        .or_else(|_| {
            time::Date::parse(naive, DATE_TEXT).map(|date| date.with_time(time::Time::MIDNIGHT))
        })
        .map_err(|_| unreadable())?;
    Ok(local.assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// Splits a trailing `Z`, `+HH:MM` or `-HH:MM` off a date-time text (none means UTC).
fn split_offset(text: &str) -> Option<(&str, UtcOffset)> {
    if let Some(naive) = text.strip_suffix(['Z', 'z']) {
        return Some((naive, UtcOffset::UTC));
    }
    let bytes = text.as_bytes();
    let n = bytes.len();
    // A date alone ("2027-01-01") has a '-' six from the end too, but no ':' three from the end.
    if n > 6 && matches!(bytes[n - 6], b'+' | b'-') && bytes[n - 3] == b':' {
        let hours: i8 = text.get(n - 5..n - 3)?.parse().ok()?;
        let minutes: i8 = text.get(n - 2..)?.parse().ok()?;
        let sign = if bytes[n - 6] == b'-' { -1 } else { 1 };
        let offset = UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
        return Some((text.get(..n - 6)?, offset));
    }
    Some((text, UtcOffset::UTC))
}

/// Parses a comma-joined scope column; NULL is no scopes.
///
/// Rows damaged by slack_sdk's rotation bug W4 hold the scope string joined character by
/// character (`c,h,a,t,:,w,r,i,t,e`; a comma in the original becomes `,,,`). Such a value is
/// repaired: no real Slack scope is one character long, so a string whose every other character
/// is a comma can only be that damage.
pub(super) fn parse_scopes(raw: Option<&str>) -> Scopes {
    let Some(raw) = raw else {
        return Scopes::default();
    };
    let mut text = raw.to_owned();
    while let Some(original) = unjoin_characters(&text) {
        text = original;
    }
    Scopes::parse(&text)
}

/// `"c,h,a,t"` → `"chat"`: undoes Python's `",".join(some_string)`.
fn unjoin_characters(joined: &str) -> Option<String> {
    let chars: Vec<char> = joined.chars().collect();
    let damaged = chars.len() >= 3
        && chars.len() % 2 == 1
        && chars.iter().skip(1).step_by(2).all(|c| *c == ',');
    damaged.then(|| chars.iter().step_by(2).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Option<OffsetDateTime> {
        parse_timestamp(&Cell::Text(value.to_owned())).unwrap()
    }

    #[test]
    fn reads_every_timestamp_form_python_writes() {
        let at = OffsetDateTime::from_unix_timestamp(1_626_249_617).unwrap();
        for form in [
            "2021-07-14 08:00:17",
            "2021-07-14T08:00:17",
            "2021-07-14 08:00:17+00:00",
            "2021-07-14 08:00:17Z",
            "2021-07-14 10:00:17+02:00",
            "2021-07-14 03:00:17-05:00",
            "1626249617",
            " 1626249617.0 ",
        ] {
            assert_eq!(text(form), Some(at), "{form}");
        }
        assert_eq!(
            text("2023-11-28 22:21:14.745556")
                .unwrap()
                .unix_timestamp_nanos(),
            1_701_210_074_745_556_000
        );
        assert_eq!(
            text("2027-01-01"),
            OffsetDateTime::from_unix_timestamp(1_798_761_600).ok()
        );
        let real = parse_timestamp(&Cell::Real(1_795_394_529.455_594_3))
            .unwrap()
            .unwrap();
        assert_eq!(real.unix_timestamp_nanos(), 1_795_394_529_455_594_000);
        assert_eq!(parse_timestamp(&Cell::Null).unwrap(), None);
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in ["not-a-timestamp", "", "2021-13-01 00:00:00", "12:00"] {
            let error = parse_timestamp(&Cell::Text(bad.to_owned())).unwrap_err();
            assert!(error.contains("not a timestamp"), "{bad}: {error}");
        }
        assert!(parse_timestamp(&Cell::Real(f64::NAN)).is_err());
        assert!(parse_timestamp(&Cell::Integer(i64::MAX)).is_err());
        assert!(parse_timestamp(&Cell::Blob).is_err());
        // Found by the sqlite_rows fuzz target: floats past i128's range saturated the cast,
        // and the product overflowed.
        for huge in [1e300, -1e300, 1.7e32, f64::MAX] {
            assert!(parse_timestamp(&Cell::Real(huge)).is_err(), "{huge}");
            assert!(
                parse_timestamp(&Cell::Text(huge.to_string())).is_err(),
                "{huge}"
            );
        }
    }

    #[test]
    fn installed_at_text_sorts_with_pythons() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_394_529_250_000_000).unwrap();
        let ours = format_installed_at(at).unwrap();
        assert_eq!(ours, "2026-11-23 00:42:09.250000");
        assert!("2026-11-23 00:42:09" < ours.as_str());
        assert!(ours.as_str() < "2026-11-23 00:42:10");
        assert_eq!(text(&ours), Some(at));
    }

    #[test]
    fn repairs_scopes_joined_character_by_character() {
        let scopes = |raw: &str| parse_scopes(Some(raw)).to_string();
        assert_eq!(scopes("c,h,a,t,:,w,r,i,t,e"), "chat:write");
        assert_eq!(
            scopes("c,h,a,t,:,w,r,i,t,e,,,c,o,m,m,a,n,d,s"),
            "chat:write,commands"
        );
        assert_eq!(scopes("chat:write,commands"), "chat:write,commands");
        assert_eq!(scopes("im:read,im:history"), "im:read,im:history");
        assert_eq!(scopes(""), "");
        assert!(parse_scopes(None).is_empty());
    }
}
