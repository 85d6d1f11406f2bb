//! Nagios states and their exit codes.

use std::fmt;

/// A check's verdict. The order is severity for the overall verdict: OK < WARNING < UNKNOWN <
/// CRITICAL. UNKNOWN ranks below CRITICAL because here it mostly means "not checked: a dependency
/// is critical", and the critical dependency is the verdict an operator must act on; it ranks above
/// WARNING because nobody knows the unchecked service is merely slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl State {
    /// Nagios plugin exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub const ALL: [State; 4] = [State::Ok, State::Warning, State::Unknown, State::Critical];
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_is_critical_then_unknown() {
        assert_eq!(
            [State::Warning, State::Unknown, State::Ok]
                .into_iter()
                .max(),
            Some(State::Unknown)
        );
        assert_eq!(State::ALL.into_iter().max().map(State::code), Some(2));
    }
}
