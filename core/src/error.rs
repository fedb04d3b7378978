//! Every error the domain can report. Each message exists once, here; the Redis layer replies with
//! `Display` of these values, so the text a client sees is defined in this file.

use std::fmt;

/// A refused request or a refused saved form. Refusal always means "nothing changed".
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An unknown token, a repeated clause, or a count that does not match the arguments.
    Syntax,
    /// A number that is not a canonical 64-bit integer.
    NotInteger,
    /// A number that is not a finite decimal.
    NotFloat,
    /// A decimal outside its documented range.
    OutOfRangeFloat {
        what: &'static str,
        min: f64,
        max: f64,
    },
    /// A number outside its documented range.
    OutOfRange {
        what: &'static str,
        min: i64,
        max: i64,
    },
    /// A list count that is not positive or does not match the arguments that follow.
    Count(&'static str),
    /// `AT` further in the future than the allowed clock skew.
    FutureTime,
    /// The write would leave the session with more fields than the configured limit.
    TooManyFields { limit: usize },
    /// More categories in one event than the configured limit.
    TooManyCategories { limit: usize },
    /// A field name or value longer than the configured limit.
    FieldTooLarge { limit: usize },
    /// ATTRS is not valid JSON.
    InvalidJson,
    /// ATTRS is valid JSON but not an object.
    AttrsNotObject,
    /// The merged attributes would exceed the size limit.
    AttrsTooLarge { limit: usize },
    /// More explicit groups than the limit.
    TooManyGroups { limit: usize },
    /// A publish would take the registry past one of its limits (`what` names the limit's
    /// configuration parameter).
    RegistryFull { what: &'static str, limit: usize },
    /// The saved form of a session could not be decoded.
    Corrupt(&'static str),
    /// The saved form was written by a newer version of the module.
    UnknownEncoding(u8),
    /// The write would leave the session's field names and values above the size limit.
    SessionTooLarge { limit: usize },
    /// `JOINEDAFTER` / `JOINEDBEFORE` leave no join time that could receive the notification.
    EmptyJoinWindow,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax => f.write_str("ERR syntax error"),
            Error::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            Error::NotFloat => f.write_str("ERR value is not a valid float"),
            Error::OutOfRangeFloat { what, min, max } => {
                let (min, max) = (float_text(*min), float_text(*max));
                write!(f, "ERR {what} must be between {min} and {max}")
            }
            Error::OutOfRange { what, min, max } => {
                write!(f, "ERR {what} must be between {min} and {max}")
            }
            Error::Count(what) => write!(
                f,
                "ERR {what} count must be positive and match the arguments that follow"
            ),
            Error::FutureTime => f.write_str("ERR AT is more than a minute in the future"),
            Error::TooManyFields { limit } => {
                write!(
                    f,
                    "ERR too many fields in the session (limit {limit}, session.max-fields)"
                )
            }
            Error::TooManyCategories { limit } => write!(
                f,
                "ERR too many categories in one event (limit {limit}, session.max-categories)"
            ),
            Error::FieldTooLarge { limit } => write!(
                f,
                "ERR field, item or category too large (limit {limit} bytes, session.max-field-size)"
            ),
            Error::InvalidJson => f.write_str("ERR ATTRS is not valid JSON"),
            Error::AttrsNotObject => f.write_str("ERR ATTRS must be a JSON object"),
            Error::AttrsTooLarge { limit } => write!(
                f,
                "ERR attributes would exceed {limit} bytes (session.max-field-size)"
            ),
            Error::TooManyGroups { limit } => {
                write!(f, "ERR too many groups in the session (limit {limit}, session.max-groups)")
            }
            Error::RegistryFull { what, limit } => write!(
                f,
                "ERR registry limit reached: {what} is {limit} (drop groups with SESSION.GROUP DROP, or raise it)"
            ),
            Error::Corrupt(what) => write!(f, "ERR corrupt session encoding: {what}"),
            Error::UnknownEncoding(v) => write!(f, "ERR unknown session encoding version {v}"),
            Error::SessionTooLarge { limit } => write!(
                f,
                "ERR session fields would exceed {limit} bytes (session.max-session-size)"
            ),
            Error::EmptyJoinWindow => {
                f.write_str("ERR JOINEDAFTER must be before JOINEDBEFORE (no member could receive it)")
            }
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A float as text that reads back as the same value, in exponent form when the plain form would
/// be long (`1e300`, not 301 digits; `1e-9`, not `0.000000001`).
pub fn float_text(v: f64) -> String {
    let plain = v.to_string();
    let exp = format!("{v:e}");
    if exp.len() < plain.len() {
        exp
    } else {
        plain
    }
}
