//! API keys for other systems: `sbk_<id>_<secret>`, shown once when made
//! and stored as the SHA-256 of the secret (a random 256-bit secret needs
//! no slow hash). Each names its scopes; every call checks the key, so a
//! revoked key stops working on every node at once.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use switchboard_proto::feed::{ApiKeyInfo, CreatedApiKey, Scope};
use switchboard_proto::{AgentId, Timestamp};

use crate::error::EngineError;
use crate::storage::StorageError;
use crate::Engine;

const PREFIX: &str = "sbk_";
/// Longest key name.
pub const MAX_NAME_CHARS: usize = 100;

/// A checked key: what its holder may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyGrant {
    pub id: String,
    pub scopes: Vec<Scope>,
}

impl ApiKeyGrant {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Does this bearer token look like an API key (rather than a session
/// token)? Decides which check it gets.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// A key's id and secret: `sbk_<id>_<secret>`. The id has no `_`; the
/// secret (base64url) may.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix(PREFIX)?.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.len() <= 64).then_some((id, secret))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn scopes_of(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// The scopes asked for, or why they are refused.
fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, EngineError> {
    if names.is_empty() {
        return Err(EngineError::BadRequest(
            "scopes: name at least one (events:read, records:read, reports:read)".into(),
        ));
    }
    let mut scopes = Vec::new();
    for name in names {
        let scope = Scope::parse(name).ok_or_else(|| {
            EngineError::BadRequest(format!(
                "scopes: {name:?} is not one of events:read, records:read, reports:read"
            ))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

impl Engine {
    /// `POST /api/v1/admin/api-keys`: the key, this once.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        by: &AgentId,
    ) -> Result<CreatedApiKey, EngineError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(EngineError::BadRequest(format!(
                "name: from 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let scopes = parse_scopes(scopes)?;
        let id = format!("ak-{}", uuid::Uuid::now_v7().simple());
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let key = format!("{PREFIX}{id}_{secret}");
        let database = self.database();
        let pool = database.pool().clone();
        let row = (
            id.clone(),
            name.to_owned(),
            scopes_text(&scopes),
            digest(&secret),
            Timestamp::now().millis(),
            by.as_str().to_owned(),
        );
        database
            .run(async move {
                sqlx::query(
                    "INSERT INTO api_keys (id, name, scopes, hash, created_ms, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(row.0)
                .bind(row.1)
                .bind(row.2)
                .bind(row.3)
                .bind(row.4)
                .bind(row.5)
                .execute(&pool)
                .await?;
                Ok(())
            })
            .await?;
        tracing::info!(api_key = %id, by = %by, "API key created");
        Ok(CreatedApiKey {
            id,
            key,
            name: name.to_owned(),
            scopes,
        })
    }

    /// `GET /api/v1/admin/api-keys`: every key, revoked ones too.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, EngineError> {
        let database = self.database();
        let pool = database.pool().clone();
        let rows = database
            .run(async move {
                let rows = sqlx::query(
                    "SELECT id, name, scopes, created_ms, created_by, revoked_ms \
                     FROM api_keys ORDER BY created_ms, id",
                )
                .fetch_all(&pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(ApiKeyInfo {
                            id: row.try_get("id")?,
                            name: row.try_get("name")?,
                            scopes: scopes_of(&row.try_get::<String, _>("scopes")?),
                            created_at: Timestamp(row.try_get("created_ms")?),
                            created_by: AgentId::new(row.try_get::<String, _>("created_by")?),
                            revoked_at: row.try_get::<Option<i64>, _>("revoked_ms")?.map(Timestamp),
                        })
                    })
                    .collect::<Result<Vec<_>, StorageError>>()
            })
            .await?;
        Ok(rows)
    }

    /// `DELETE /api/v1/admin/api-keys/{id}`: the key stops working at once.
    pub async fn revoke_api_key(&self, id: &str, by: &AgentId) -> Result<(), EngineError> {
        let database = self.database();
        let pool = database.pool().clone();
        let key = id.to_owned();
        let found = database
            .run(async move {
                sqlx::query(
                    "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $1) WHERE id = $2",
                )
                .bind(Timestamp::now().millis())
                .bind(key)
                .execute(&pool)
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(StorageError::from)
            })
            .await?;
        if !found {
            return Err(EngineError::not_found("API key", id));
        }
        tracing::info!(api_key = %id, by = %by, "API key revoked");
        Ok(())
    }

    /// Checks a key: known, not revoked, its secret right.
    pub async fn check_api_key(&self, key: &str) -> Result<ApiKeyGrant, EngineError> {
        let refused = || EngineError::Unauthorized("unknown or revoked API key".into());
        let (id, secret) = split_key(key).ok_or_else(refused)?;
        let database = self.database();
        let pool = database.pool().clone();
        let wanted = id.to_owned();
        let row = database
            .run(async move {
                let row = sqlx::query(
                    "SELECT hash, scopes FROM api_keys WHERE id = $1 AND revoked_ms IS NULL",
                )
                .bind(wanted)
                .fetch_optional(&pool)
                .await?;
                row.map(|row| {
                    Ok::<_, StorageError>((
                        row.try_get::<String, _>("hash")?,
                        row.try_get::<String, _>("scopes")?,
                    ))
                })
                .transpose()
            })
            .await?;
        let (hash, scopes) = row.ok_or_else(refused)?;
        if !bool::from(digest(secret).as_bytes().ct_eq(hash.as_bytes())) {
            return Err(refused());
        }
        Ok(ApiKeyGrant {
            id: id.to_owned(),
            scopes: scopes_of(&scopes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_by_name_and_kept_once() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_scopes(&names(&["events:read", "events:read", "records:read"])).unwrap(),
            vec![Scope::EventsRead, Scope::RecordsRead]
        );
        assert!(parse_scopes(&names(&[])).is_err());
        assert!(parse_scopes(&names(&["admin"])).is_err());
        assert_eq!(
            scopes_of(&scopes_text(&[Scope::ReportsRead])),
            [Scope::ReportsRead]
        );
    }

    #[test]
    fn a_key_splits_into_its_id_and_a_secret_that_may_hold_underscores() {
        assert_eq!(
            split_key("sbk_ak-0193_se_cr_et"),
            Some(("ak-0193", "se_cr_et"))
        );
        for bad in [
            "sbk_",
            "sbk_ak-1",
            "sbk__secret",
            "sbk_ak-1_",
            "ak-1_secret",
        ] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_keys_are_taken_for_keys() {
        assert!(is_api_key("sbk_ak-1_secret"));
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
}
