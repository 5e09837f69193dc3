//! Text rules every node applies the same way. Checked before anything is
//! stored or relayed, so refused text changes nothing.

use crate::error::ErrorCode;

/// Characters reserved for template slots (`<customerName>`): agents may not
/// type them.
pub const RESERVED_CHARACTERS: [char; 2] = ['<', '>'];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("text is empty")]
    Empty,
    #[error("text is {chars} characters; the limit is {max}")]
    TooLong { chars: usize, max: usize },
    #[error("agent text may not contain '<' or '>': they are reserved for template slots")]
    ReservedCharacters,
}

impl TextError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TextError::Empty => ErrorCode::BadRequest,
            TextError::TooLong { .. } => ErrorCode::TooLong,
            TextError::ReservedCharacters => ErrorCode::ReservedCharacters,
        }
    }
}

fn check_length(text: &str, max_chars: usize) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    // Byte length bounds the char count from above: skip counting short text.
    if text.len() > max_chars {
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(TextError::TooLong {
                chars,
                max: max_chars,
            });
        }
    }
    Ok(())
}

/// Text an agent typed: non-empty, at most `max_chars`, no `<` or `>`.
/// A whole number written as a float (`10.0`, `1e1`): JSON Schema's
/// integer allows it, and clients generated from the OpenAPI document may
/// send it so. `None` for a fraction, a negative, or beyond `u64`.
pub fn whole_number(value: f64) -> Option<u64> {
    (value.fract() == 0.0 && (0.0..u64::MAX as f64).contains(&value)).then_some(value as u64)
}

pub fn check_agent_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    check_length(text, max_chars)?;
    if text.contains(RESERVED_CHARACTERS) {
        return Err(TextError::ReservedCharacters);
    }
    Ok(())
}

/// Text a customer typed: non-empty, at most `max_chars`. `<` and `>` are
/// allowed; clients always render text as text.
pub fn check_customer_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    check_length(text, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_may_not_contain_reserved_characters() {
        assert_eq!(
            check_agent_text("hello <b>", 100),
            Err(TextError::ReservedCharacters)
        );
        assert_eq!(
            check_agent_text("a > b", 100),
            Err(TextError::ReservedCharacters)
        );
        assert_eq!(check_agent_text("hello", 100), Ok(()));
    }

    #[test]
    fn customer_text_may_contain_reserved_characters() {
        assert_eq!(
            check_customer_text("<img src=x onerror=alert(1)>", 100),
            Ok(())
        );
    }

    #[test]
    fn oversize_text_is_too_long_counting_characters_not_bytes() {
        assert_eq!(check_agent_text(&"é".repeat(10), 10), Ok(()));
        assert_eq!(
            check_agent_text(&"é".repeat(11), 10),
            Err(TextError::TooLong { chars: 11, max: 10 })
        );
    }

    #[test]
    fn blank_text_is_refused() {
        assert_eq!(check_customer_text("  \n", 10), Err(TextError::Empty));
    }
}
