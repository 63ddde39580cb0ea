//! Why an extractor refused.

use std::fmt;

/// An extractor refused: what it is and why. The event is dropped (with a
/// warning) or the connection refused (the client sees the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The extractor, for the log (`"Data<String>"`, ...).
    pub extractor: &'static str,
    /// Why.
    pub reason: String,
}

impl Refused {
    /// A refusal by `extractor` (usually `std::any::type_name::<Self>()`).
    pub fn new(extractor: &'static str, reason: impl fmt::Display) -> Refused {
        Refused {
            extractor,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.extractor, self.reason)
    }
}

impl std::error::Error for Refused {}
