//! A write as data: statements with their bound values, so that it can be handed to the writer
//! thread and run there (see `writer.rs`).

use std::borrow::Cow;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

/// One bound value.
#[derive(Clone, Debug)]
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
}

impl Value<'_> {
    fn into_owned(self) -> Value<'static> {
        match self {
            Self::Null => Value::Null,
            Self::Integer(n) => Value::Integer(n),
            Self::Real(x) => Value::Real(x),
            Self::Text(text) => Value::Text(Cow::Owned(text.into_owned())),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(Cow::Borrowed(text))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Self::Null, |text| Self::Text(Cow::Borrowed(text)))
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Self::Integer(n)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Self::Null, Self::Integer)
    }
}

impl From<bool> for Value<'_> {
    fn from(flag: bool) -> Self {
        Self::Integer(i64::from(flag))
    }
}

impl From<f64> for Value<'_> {
    fn from(x: f64) -> Self {
        Self::Real(x)
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Integer(n) => ValueRef::Integer(*n),
            Self::Real(x) => ValueRef::Real(*x),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

/// A statement and its values, in `?` order.
#[derive(Debug)]
pub(super) struct Statement<'a> {
    pub(super) sql: &'static str,
    pub(super) values: Vec<Value<'a>>,
}

impl<'a> Statement<'a> {
    pub(super) fn new(sql: &'static str, values: impl IntoIterator<Item = Value<'a>>) -> Self {
        Self {
            sql,
            values: values.into_iter().collect(),
        }
    }

    /// The same statement owning its values, to be sent to the writer thread.
    pub(super) fn into_owned(self) -> Statement<'static> {
        Statement {
            sql: self.sql,
            values: self.values.into_iter().map(Value::into_owned).collect(),
        }
    }

    /// Runs the statement on `connection` (prepared once per connection, then cached) and
    /// returns how many rows it changed.
    pub(super) fn execute(&self, connection: &rusqlite::Connection) -> rusqlite::Result<u64> {
        let mut prepared = connection.prepare_cached(self.sql)?;
        let changed = prepared.execute(rusqlite::params_from_iter(&self.values))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }
}

/// Builds a [`Statement`] from an SQL string and values convertible to [`Value`].
macro_rules! statement {
    ($sql:expr $(, $value:expr)* $(,)?) => {
        $crate::store::sqlite::statement::Statement::new(
            $sql,
            [$($crate::store::sqlite::statement::Value::from($value)),*],
        )
    };
}
pub(super) use statement;
