//! A customer's identity as their web site signs it: an HS256 JWT made with
//! `[widget] identity_secret`, with `sub` (the site's own id for them),
//! `exp` (required), and optionally `name` and `email`. A valid one links
//! a chat to the customer's earlier chats; anything else is refused before
//! anything is created. Only HS256 is accepted, so `alg: none` and
//! algorithm confusion are refused by construction.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use switchboard_engine::customers::VerifiedIdentity;
use switchboard_proto::ErrorCode;

use crate::api_error::ApiError;
use crate::settings::TokenSecret;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Longest `sub`, name or email taken from an identity.
const MAX_CLAIM_CHARS: usize = 256;

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, format!("identity refused: {why}"))
}

/// Checks `token` against `secret`.
pub fn verify(token: &str, secret: Option<&TokenSecret>) -> Result<VerifiedIdentity, ApiError> {
    let secret = secret.ok_or_else(|| {
        refused("this server takes no identities ([widget] identity_secret is not set)")
    })?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 0;
    let claims = decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|error| match error.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => refused("expired"),
        jsonwebtoken::errors::ErrorKind::InvalidSignature => refused("bad signature"),
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => refused("only HS256 is accepted"),
        jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
            refused(format!("no {claim} claim"))
        }
        _ => refused(error),
    })?
    .claims;
    let long = |value: &str| value.chars().count() > MAX_CLAIM_CHARS;
    if claims.sub.is_empty() || long(&claims.sub) {
        return Err(refused(format!(
            "sub must have 1 to {MAX_CLAIM_CHARS} characters"
        )));
    }
    if claims.name.as_deref().is_some_and(long) || claims.email.as_deref().is_some_and(long) {
        return Err(refused(format!(
            "name and email take at most {MAX_CLAIM_CHARS} characters"
        )));
    }
    Ok(VerifiedIdentity {
        external_id: claims.sub,
        name: claims.name.filter(|name| !name.trim().is_empty()),
        email: claims.email.filter(|email| !email.trim().is_empty()),
    })
}
