//! Who may talk to the engine: agent passwords checked at login, then signed
//! tokens on every request and WebSocket (PROTOCOL.md, "Identities and
//! tokens").
//!
//! - [`Credentials`]: username -> agent, with an argon2 hash or (demos and
//!   tests) a plain password. Login answers the same, after the same work,
//!   for an unknown user and for a wrong password.
//! - [`TokenSigner`]: `base64url(json claims) "." base64url(HMAC-SHA256)`.
//!   Stateless, so any node holding the shared secret validates any token.
//!
//! Nothing here touches the async runtime; argon2 is deliberately slow, so
//! callers run [`Credentials::verify`] off it (see there).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_proto::{AgentId, ConversationId};

use crate::settings::{AgentSettings, PasswordSetting, Settings};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password must not be empty")]
    EmptyPassword,
    /// argon2 refused its parameters or failed to hash; not caused by the
    /// password's content.
    #[error("argon2 failed: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// Hashes a password as an argon2id PHC string with argon2's default
/// (OWASP-recommended) cost, for `password_hash` in the config file. Behind
/// the `switchboard hash-password` subcommand. Slow on purpose.
pub fn hash_password(plain: &str) -> Result<String, AuthError> {
    if plain.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    hash_with(&Argon2::default(), plain)
}

fn hash_with(argon2: &Argon2<'_>, plain: &str) -> Result<String, AuthError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(AuthError::Argon2)?;
    let hash = argon2
        .hash_password(plain.as_bytes(), &salt)
        .map_err(AuthError::Argon2)?;
    Ok(hash.to_string())
}

/// The agents' login secrets, built once from [`Settings`]. Cloning is cheap
/// (one `Arc`), so every worker and blocking task can hold its own handle.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<CredentialsInner>,
}

struct CredentialsInner {
    by_username: HashMap<String, Account>,
    /// Verified against when the username is unknown (and alongside plain
    /// passwords), so every login costs one argon2 run whatever the outcome
    /// and response time does not reveal which usernames exist.
    dummy_hash: String,
}

struct Account {
    agent_id: AgentId,
    secret: StoredSecret,
}

enum StoredSecret {
    /// An argon2 PHC string (validated by the settings loader).
    Argon2(String),
    /// SHA-256 of a plain password: fixed length, so the constant-time
    /// compare does not leak the password's length either.
    Plain([u8; 32]),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("usernames", &self.inner.by_username.len())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn from_settings(settings: &Settings) -> Result<Self, AuthError> {
        Self::from_agents(&settings.agents)
    }

    /// Costs one argon2 hash (the dummy), with the cost parameters of the
    /// first configured hash so that unknown users take as long as real ones.
    pub fn from_agents(agents: &[AgentSettings]) -> Result<Self, AuthError> {
        let mut by_username = HashMap::with_capacity(agents.len());
        let mut dummy_params: Option<Params> = None;
        for agent in agents {
            let secret = match &agent.password {
                PasswordSetting::Hash(phc) => {
                    if dummy_params.is_none() {
                        let parsed = PasswordHash::new(phc).map_err(AuthError::Argon2)?;
                        dummy_params = Some(Params::try_from(&parsed).map_err(AuthError::Argon2)?);
                    }
                    StoredSecret::Argon2(phc.clone())
                }
                PasswordSetting::Plain(plain) => StoredSecret::Plain(sha256(plain)),
            };
            by_username.insert(
                agent.username.clone(),
                Account {
                    agent_id: agent.id.clone(),
                    secret,
                },
            );
        }
        let dummy_argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            dummy_params.unwrap_or_default(),
        );
        let dummy_hash = hash_with(&dummy_argon2, "switchboard-dummy-password")?;
        Ok(Credentials {
            inner: Arc::new(CredentialsInner {
                by_username,
                dummy_hash,
            }),
        })
    }

    /// The agent these credentials belong to, or `None`: the same `None`
    /// for an unknown username and a wrong password.
    ///
    /// Blocking and CPU-heavy (one argon2 run, tens of milliseconds): never
    /// call it on an async worker. From actix-web use
    /// `actix_web::web::block(move || credentials.verify(&username, &password))`,
    /// from tokio `tokio::task::spawn_blocking`.
    pub fn verify(&self, username: &str, password: &str) -> Option<AgentId> {
        let Some(account) = self.inner.by_username.get(username) else {
            let _ = argon2_matches(&self.inner.dummy_hash, password);
            return None;
        };
        let matches = match &account.secret {
            StoredSecret::Argon2(phc) => argon2_matches(phc, password),
            StoredSecret::Plain(expected) => {
                let _ = argon2_matches(&self.inner.dummy_hash, password);
                bool::from(sha256(password).ct_eq(expected))
            }
        };
        matches.then(|| account.agent_id.clone())
    }
}

/// argon2's verifier compares in constant time and reads the cost from the
/// PHC string. A hash that does not parse never matches.
fn argon2_matches(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

// ---------------------------------------------------------------------------
// Tokens

/// Longest token `verify` looks at; real ones are about 150 bytes. Bounds the
/// work an attacker can ask for.
const MAX_TOKEN_LEN: usize = 2048;
/// HMAC-SHA256 output, in bytes.
const MAC_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server could have issued (shape, encoding, claims).
    #[error("malformed token")]
    Malformed,
    /// Well formed but not signed with this cluster's secret, or altered.
    #[error("bad token signature")]
    BadSignature,
    /// Authentic but past its `exp`.
    #[error("token expired")]
    Expired,
}

/// Whose token it is; the `role` claim picks the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An agent: may use agent commands and the REST directory.
    Agent(AgentId),
    /// A customer: valid for this one conversation only.
    Customer(ConversationId),
}

/// The `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Agent,
    Customer,
}

/// A verified token's content. Only [`TokenSigner::verify`] makes one, so
/// holding a `Claims` means the signature and expiry were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    subject: Subject,
    issued_at_ms: u64,
    expires_at: u64,
}

impl Claims {
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    pub fn role(&self) -> TokenRole {
        match self.subject {
            Subject::Agent(_) => TokenRole::Agent,
            Subject::Customer(_) => TokenRole::Customer,
        }
    }

    /// The agent, when this is an agent token.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match &self.subject {
            Subject::Agent(agent_id) => Some(agent_id),
            Subject::Customer(_) => None,
        }
    }

    /// The conversation, when this is a customer token.
    pub fn conversation_id(&self) -> Option<&ConversationId> {
        match &self.subject {
            Subject::Customer(conversation_id) => Some(conversation_id),
            Subject::Agent(_) => None,
        }
    }

    /// `iat`, unix seconds.
    pub fn issued_at(&self) -> u64 {
        self.issued_at_ms / 1000
    }

    /// When the token was issued, unix milliseconds: an agent's logout
    /// revokes the tokens issued up to it ([`Engine::check_agent_token`]),
    /// and a login in the same second must not be caught by that.
    ///
    /// [`Engine::check_agent_token`]: switchboard_engine::Engine::check_agent_token
    pub fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }

    /// `exp`, unix seconds; the token is refused from this second on.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// The claims as they travel, inside the signed part.
#[derive(Serialize, Deserialize)]
struct WireClaims {
    role: TokenRole,
    sub: String,
    iat: u64,
    /// `iat` to the millisecond (absent in tokens issued before it was
    /// added: `iat` then stands for it).
    #[serde(default)]
    iat_ms: u64,
    exp: u64,
}

/// Issues and checks tokens with one secret. Cheap to clone: the keyed HMAC
/// state is computed once here and copied per token.
#[derive(Clone)]
pub struct TokenSigner {
    keyed_mac: Hmac<Sha256>,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("ttl_s", &self.ttl_s)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// `secret` should be at least 32 bytes; the settings loader enforces it.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // HMAC is defined for keys of any length; `new_from_slice` only fails
        // for fixed-key MACs, so this arm cannot be reached.
        let keyed_mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        TokenSigner {
            keyed_mac,
            ttl_s: ttl.as_secs(),
        }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(
            settings.auth.token_secret.as_bytes(),
            settings.auth.token_ttl,
        )
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_s)
    }

    pub fn issue_agent(&self, agent_id: &AgentId) -> String {
        self.issue_at_ms(&Subject::Agent(agent_id.clone()), unix_now_ms())
    }

    pub fn issue_customer(&self, conversation_id: &ConversationId) -> String {
        self.issue_at_ms(&Subject::Customer(conversation_id.clone()), unix_now_ms())
    }

    /// Issues a token as if the clock read `now` (unix seconds); for tests.
    pub fn issue_at(&self, subject: &Subject, now: u64) -> String {
        self.issue_at_ms(subject, now.saturating_mul(1000))
    }

    /// When a token issued at `issued_at_ms` expires (unix seconds).
    pub(crate) fn expires_at(&self, issued_at_ms: u64) -> u64 {
        (issued_at_ms / 1000).saturating_add(self.ttl_s)
    }

    pub(crate) fn issue_at_ms(&self, subject: &Subject, now_ms: u64) -> String {
        let now = now_ms / 1000;
        let (role, sub) = match subject {
            Subject::Agent(agent_id) => (TokenRole::Agent, agent_id.as_str()),
            Subject::Customer(conversation_id) => (TokenRole::Customer, conversation_id.as_str()),
        };
        let claims = WireClaims {
            role,
            sub: sub.to_owned(),
            iat: now,
            iat_ms: now_ms,
            exp: self.expires_at(now_ms),
        };
        // Serializing a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.keyed_mac.clone();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, unix_now_ms() / 1000)
    }

    /// Verifies as if the clock read `now` (unix seconds). The signature is
    /// checked before the payload is parsed, so unsigned input is never
    /// deserialized.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        if payload.is_empty() || signature.len() != MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let mut mac = self.keyed_mac.clone();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: WireClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.sub.is_empty() || claims.exp < claims.iat {
            return Err(TokenError::Malformed);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        let subject = match claims.role {
            TokenRole::Agent => Subject::Agent(AgentId::new(claims.sub)),
            TokenRole::Customer => Subject::Customer(ConversationId::new(claims.sub)),
        };
        let issued_at_ms = match claims.iat_ms {
            0 => claims.iat.saturating_mul(1000),
            ms => ms,
        };
        Ok(Claims {
            subject,
            issued_at_ms,
            expires_at: claims.exp,
        })
    }
}

/// Unix milliseconds, on the clock every other time of the node reads
/// ([`Timestamp::now`]). A clock before 1970 reads as 0, which makes every
/// token look fresh rather than panicking; such a host has bigger problems.
pub(crate) fn unix_now_ms() -> u64 {
    u64::try_from(switchboard_proto::Timestamp::now().millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_750_000_000;

    fn signer() -> TokenSigner {
        TokenSigner::new(SECRET, Duration::from_secs(3600))
    }

    /// A cheap argon2id hash: the real cost makes debug-build tests slow and
    /// proves nothing more.
    fn cheap_hash(plain: &str) -> String {
        let params = match Params::new(8, 1, 1, None) {
            Ok(params) => params,
            Err(error) => panic!("{error}"),
        };
        match hash_with(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            plain,
        ) {
            Ok(hash) => hash,
            Err(error) => panic!("{error}"),
        }
    }

    fn agent(id: &str, username: &str, password: PasswordSetting) -> AgentSettings {
        AgentSettings {
            id: AgentId::new(id),
            name: id.to_owned(),
            username: username.to_owned(),
            password,
            queues: Vec::new(),
            max_chats: 3,
            roles: vec![crate::settings::AgentRole::Agent],
        }
    }

    fn credentials() -> Credentials {
        let agents = [
            agent(
                "a1",
                "hashed",
                PasswordSetting::Hash(cheap_hash("right horse")),
            ),
            agent(
                "a2",
                "plain",
                PasswordSetting::Plain("plain-pass".to_owned()),
            ),
        ];
        match Credentials::from_agents(&agents) {
            Ok(credentials) => credentials,
            Err(error) => panic!("{error}"),
        }
    }

    fn tamper_signature(token: &str) -> String {
        let Some((payload, signature)) = token.split_once('.') else {
            panic!("token without a dot: {token}");
        };
        let mut bytes = match URL_SAFE_NO_PAD.decode(signature) {
            Ok(bytes) => bytes,
            Err(error) => panic!("{error}"),
        };
        bytes[0] ^= 0x01;
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn argon2_password_verifies_right_and_refuses_wrong() {
        let credentials = credentials();
        assert_eq!(
            credentials.verify("hashed", "right horse"),
            Some(AgentId::new("a1"))
        );
        assert_eq!(credentials.verify("hashed", "wrong horse"), None);
        assert_eq!(credentials.verify("hashed", ""), None);
    }

    #[test]
    fn plain_password_verifies_right_and_refuses_wrong() {
        let credentials = credentials();
        assert_eq!(
            credentials.verify("plain", "plain-pass"),
            Some(AgentId::new("a2"))
        );
        assert_eq!(credentials.verify("plain", "plain-pas"), None);
        assert_eq!(credentials.verify("plain", "plain-pass "), None);
    }

    #[test]
    fn unknown_user_gets_the_same_answer_as_a_wrong_password() {
        let credentials = credentials();
        assert_eq!(credentials.verify("nobody", "right horse"), None);
        assert_eq!(
            credentials.verify("nobody", "switchboard-dummy-password"),
            None
        );
        assert_eq!(credentials.verify("Hashed", "right horse"), None);
    }

    #[test]
    fn one_agents_password_does_not_open_another_account() {
        let credentials = credentials();
        assert_eq!(credentials.verify("plain", "right horse"), None);
        assert_eq!(credentials.verify("hashed", "plain-pass"), None);
    }

    #[test]
    fn dummy_hash_uses_the_configured_cost() {
        let credentials = credentials();
        let parsed = match PasswordHash::new(&credentials.inner.dummy_hash) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{error}"),
        };
        let params = match Params::try_from(&parsed) {
            Ok(params) => params,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (8, 1, 1)
        );
    }

    #[test]
    fn credentials_are_cheap_to_share() {
        let credentials = credentials();
        let copy = credentials.clone();
        assert!(Arc::ptr_eq(&credentials.inner, &copy.inner));
    }

    #[test]
    fn demo_agents_log_in_with_username_dash_demo() {
        let settings = match Settings::load(None, [("UNRELATED", "x")]) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        let credentials = match Credentials::from_settings(&settings) {
            Ok(credentials) => credentials,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            credentials.verify("alice", "alice-demo"),
            Some(AgentId::new("alice"))
        );
        assert_eq!(
            credentials.verify("sam", "sam-demo"),
            Some(AgentId::new("sam"))
        );
        assert_eq!(credentials.verify("alice", "bob-demo"), None);
    }

    #[test]
    fn hash_password_makes_an_argon2id_phc_string_that_verifies() {
        let hash = match hash_password("correct horse") {
            Ok(hash) => hash,
            Err(error) => panic!("{error}"),
        };
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(argon2_matches(&hash, "correct horse"));
        assert!(!argon2_matches(&hash, "correct horse!"));
    }

    #[test]
    fn hash_password_refuses_empty_password() {
        assert!(matches!(hash_password(""), Err(AuthError::EmptyPassword)));
    }

    #[test]
    fn agent_token_round_trips() {
        let signer = signer();
        let token = signer.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        let claims = match signer.verify_at(&token, NOW + 10) {
            Ok(claims) => claims,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(claims.subject(), &Subject::Agent(AgentId::new("alice")));
        assert_eq!(claims.role(), TokenRole::Agent);
        assert_eq!(claims.agent_id(), Some(&AgentId::new("alice")));
        assert_eq!(claims.conversation_id(), None);
        assert_eq!(claims.issued_at(), NOW);
        assert_eq!(claims.issued_at_ms(), NOW * 1000);
        assert_eq!(claims.expires_at(), NOW + 3600);
    }

    #[test]
    fn tokens_carry_their_issue_time_to_the_millisecond() {
        let signer = signer();
        let at_ms = NOW * 1000 + 437;
        let token = signer.issue_at_ms(&Subject::Agent(AgentId::new("alice")), at_ms);
        let claims = match signer.verify_at(&token, NOW) {
            Ok(claims) => claims,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(claims.issued_at_ms(), at_ms);
        assert_eq!(claims.issued_at(), NOW);
    }

    #[test]
    fn a_token_without_iat_ms_is_issued_at_its_iat() {
        let signer = signer();
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"role":"agent","sub":"alice","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        ));
        let mut mac = signer.keyed_mac.clone();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let claims = match signer.verify_at(&format!("{payload}.{signature}"), NOW) {
            Ok(claims) => claims,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(claims.issued_at_ms(), NOW * 1000);
    }

    #[test]
    fn customer_token_round_trips() {
        let signer = signer();
        let conversation = ConversationId::generate();
        let token = signer.issue_customer(&conversation);
        let claims = match signer.verify(&token) {
            Ok(claims) => claims,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(claims.role(), TokenRole::Customer);
        assert_eq!(claims.conversation_id(), Some(&conversation));
        assert_eq!(claims.agent_id(), None);
    }

    #[test]
    fn issued_agent_token_verifies_now() {
        let signer = signer();
        let token = signer.issue_agent(&AgentId::new("bob"));
        assert!(signer.verify(&token).is_ok());
    }

    #[test]
    fn token_is_url_safe() {
        let token = signer().issue_at(&Subject::Agent(AgentId::new("a?b/c+d")), NOW);
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    }

    #[test]
    fn tampered_payload_is_bad_signature() {
        let signer = signer();
        let token = signer.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        let Some((_, signature)) = token.split_once('.') else {
            panic!("token without a dot");
        };
        let forged_claims = r#"{"role":"agent","sub":"sam","iat":1750000000,"exp":1750003600}"#;
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(forged_claims));
        assert_eq!(
            signer.verify_at(&forged, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_bad_signature() {
        let signer = signer();
        let token = signer.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        assert_eq!(
            signer.verify_at(&tamper_signature(&token), NOW),
            Err(TokenError::BadSignature)
        );
        let Some((payload, _)) = token.split_once('.') else {
            panic!("token without a dot");
        };
        let short_signature = format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 16]));
        assert_eq!(
            signer.verify_at(&short_signature, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn token_from_another_secret_is_bad_signature() {
        let other = TokenSigner::new(
            b"another-secret-of-at-least-32-bytes!",
            Duration::from_secs(3600),
        );
        let token = other.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        assert_eq!(
            signer().verify_at(&token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn token_expires_after_ttl() {
        let signer = signer();
        let token = signer.issue_at(&Subject::Customer(ConversationId::new("c-1")), NOW);
        assert!(signer.verify_at(&token, NOW + 3599).is_ok());
        assert_eq!(
            signer.verify_at(&token, NOW + 3600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            signer.verify_at(&token, NOW + 100_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn expired_token_with_bad_signature_is_bad_signature() {
        let signer = signer();
        let token = signer.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        assert_eq!(
            signer.verify_at(&tamper_signature(&token), NOW + 100_000),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let signer = signer();
        let too_long = "a".repeat(MAX_TOKEN_LEN + 1);
        for garbage in [
            "",
            ".",
            "no-dot-at-all",
            "payload.",
            "abc.!!!not-base64!!!",
            "Bearer abc.def",
            too_long.as_str(),
        ] {
            assert_eq!(
                signer.verify_at(garbage, NOW),
                Err(TokenError::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn signed_but_invalid_claims_are_malformed() {
        let signer = signer();
        let sign = |claims: &str| {
            let payload = URL_SAFE_NO_PAD.encode(claims);
            let mut mac = signer.keyed_mac.clone();
            mac.update(payload.as_bytes());
            format!(
                "{payload}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        for claims in [
            "not json",
            r#"{"role":"admin","sub":"x","iat":1,"exp":9999999999}"#,
            r#"{"role":"agent","sub":"","iat":1,"exp":9999999999}"#,
            r#"{"role":"agent","sub":"x","iat":5,"exp":4}"#,
            r#"{"role":"agent","sub":"x"}"#,
        ] {
            assert_eq!(
                signer.verify_at(&sign(claims), NOW),
                Err(TokenError::Malformed),
                "{claims}"
            );
        }
    }

    #[test]
    fn signer_from_settings_uses_secret_and_ttl() {
        let settings = match Settings::load(None, [("SWITCHBOARD__AUTH__TOKEN_TTL_S", "60")]) {
            Ok(settings) => settings,
            Err(error) => panic!("{error}"),
        };
        let signer = TokenSigner::from_settings(&settings);
        assert_eq!(signer.ttl(), Duration::from_secs(60));
        let same_secret = TokenSigner::new(
            crate::settings::DEMO_TOKEN_SECRET.as_bytes(),
            Duration::from_secs(60),
        );
        let token = same_secret.issue_at(&Subject::Agent(AgentId::new("alice")), NOW);
        assert!(signer.verify_at(&token, NOW + 59).is_ok());
        assert_eq!(signer.verify_at(&token, NOW + 60), Err(TokenError::Expired));
    }
}
