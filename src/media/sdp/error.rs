//! Why an SDP body was refused, naming the offending line so a log entry is
//! enough to find the culprit device.

/// Longest excerpt of a bad line quoted in an error (keeps logs bounded).
const EXCERPT_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is empty")]
    Empty,
    #[error("SDP is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("SDP has more than {limit} lines")]
    TooManyLines { limit: usize },
    #[error("SDP has more than {limit} media sections")]
    TooManyMedia { limit: usize },
    /// `line` is 1-based and counts every line of the input, blank ones too.
    #[error("SDP line {line} {text:?}: {reason}")]
    BadLine { line: usize, text: String, reason: &'static str },
}

impl SdpError {
    pub(super) fn bad_line(line: usize, text: &str, reason: &'static str) -> Self {
        // chars(), not byte slicing: the text may hold multi-byte UTF-8.
        let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        if text.chars().nth(EXCERPT_CHARS).is_some() {
            excerpt.push('…');
        }
        SdpError::BadLine { line, text: excerpt, reason }
    }
}
