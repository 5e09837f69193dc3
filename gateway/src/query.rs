//! Whole numbers in query strings (`limit`, `wait_s`). The OpenAPI
//! document calls them integers, and an integer in JSON Schema may be
//! written with a zero fraction (`10.0`): that is taken too. Ranges are the
//! engine's to check.

use switchboard_proto::ErrorCode;

use crate::api_error::ApiError;

/// `text` as a whole number, or a `bad_request` naming `key`.
pub fn whole_number<T: TryFrom<u64>>(key: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let refused =
        |why: &str| ApiError::new(ErrorCode::BadRequest, format!("{key}: {text:?} {why}"));
    let value = match text.parse::<u64>() {
        Ok(value) => value,
        Err(_) => text
            .parse::<f64>()
            .ok()
            .and_then(switchboard_proto::validation::whole_number)
            .ok_or_else(|| refused("is not a whole number"))?,
    };
    T::try_from(value)
        .map(Some)
        .map_err(|_| refused("is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_read_with_or_without_a_zero_fraction() {
        assert_eq!(whole_number::<u32>("limit", Some("10")).unwrap(), Some(10));
        assert_eq!(
            whole_number::<u32>("limit", Some("10.0")).unwrap(),
            Some(10)
        );
        assert_eq!(whole_number::<u32>("limit", Some("1e1")).unwrap(), Some(10));
        assert_eq!(whole_number::<u32>("limit", None).unwrap(), None);
    }

    #[test]
    fn anything_else_is_refused_naming_the_key() {
        for text in ["", "ten", "1.5", "-1", "NaN", "inf", "99999999999"] {
            let error = whole_number::<u32>("wait_s", Some(text)).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{text}");
            assert!(error.message.starts_with("wait_s: "), "{}", error.message);
        }
    }
}
