//! All SQL on `api_tokens`: per-user API tokens, created, listed and revoked
//! with `enqueue token`, checked by the HTTP API on every request.
//!
//! A token is `vc_` followed by 64 lowercase hex characters: two v4 UUIDs,
//! whose 244 random bits come from `getrandom`, the operating system's
//! CSPRNG (uuid's `v4` feature; `fastrand` is not cryptographic and is never
//! used here). The plaintext exists once, in what [`create_token`] returns,
//! and is shown to the user once; the database keeps only its SHA-256
//! ([`hash_token`]), so a leaked table or backup lets no one call the API.
//! A fast hash is the right one here: a slow KDF (bcrypt, argon2) protects
//! low-entropy passwords from guessing, and 244 random bits cannot be
//! guessed, so SHA-256 keeps lookups one indexed equality match
//! (`uk_token_hash`) at no loss of safety. The first characters
//! (`token_prefix`, e.g. `vc_3f9a1c2b`) are stored in clear so lists can
//! tell tokens apart.
//!
//! [`authenticate`] is the API's check: a string that cannot be a token is
//! refused without a query; a revoked token, or one whose user is disabled,
//! is refused like an unknown one. It records use in `last_used_at` at most
//! once a minute per token, so requests do not each write a row.

use crate::db::PooledConnection;
use crate::schema::{api_tokens, users};
use crate::BadInput;
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "vc_";
/// Hex characters after [`TOKEN_PREFIX`].
const SECRET_HEX_LEN: usize = 64;
/// Characters of the token stored in clear (`vc_` + 8 hex).
const SHOWN_PREFIX_LEN: usize = TOKEN_PREFIX.len() + 8;
/// The longest `name` (`api_tokens.name VARCHAR(100)`), in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// An `api_tokens` row, without its hash: what lists show.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_tokens)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: Option<String>,
    pub token_prefix: String,
    pub is_operator: bool,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub token_id: i64,
    pub is_operator: bool,
}

#[derive(Insertable)]
#[diesel(table_name = api_tokens)]
struct NewToken<'a> {
    user_id: i64,
    name: Option<&'a str>,
    token_prefix: &'a str,
    token_hash: &'a str,
    is_operator: bool,
}

/// Returns a new token: `vc_` and 64 lowercase hex characters, 244 bits of
/// them random (two v4 UUIDs from the OS CSPRNG; the version and variant
/// bits are fixed).
pub fn generate_token() -> String {
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + SECRET_HEX_LEN);
    token.push_str(TOKEN_PREFIX);
    for _ in 0..2 {
        token.push_str(&hex::encode(uuid::Uuid::new_v4().as_bytes()));
    }
    token
}

/// Returns the SHA-256 of `token` as 64 lowercase hex characters: the form
/// `api_tokens.token_hash` stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Returns whether `token` has the form [`generate_token`] makes (`vc_` and
/// 64 lowercase hex characters). Anything else is no token and is refused
/// without a query.
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_HEX_LEN
            && secret.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Creates a token for `user_id` and returns its row and its plaintext: the
/// only time the plaintext exists (only its hash is stored). A name longer
/// than [`MAX_NAME_CHARS`] or an unknown user is [`BadInput`].
pub async fn create_token(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    name: Option<&str>,
    is_operator: bool,
) -> anyhow::Result<(ApiToken, String)> {
    if let Some(name) = name {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(BadInput::new(format!(
                "a token name may have at most {MAX_NAME_CHARS} characters"
            ))
            .into());
        }
    }
    let token = generate_token();
    let hash = hash_token(&token);
    let inserted = diesel::insert_into(api_tokens::table)
        .values(NewToken {
            user_id,
            name,
            token_prefix: &token[..SHOWN_PREFIX_LEN],
            token_hash: &hash,
            is_operator,
        })
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => return Err(BadInput::new(format!("no user with id {user_id}")).into()),
        Err(e) => return Err(e).context("creating an API token"),
    }
    let row = api_tokens::table
        .filter(api_tokens::token_hash.eq(&hash))
        .select(ApiToken::as_select())
        .first(conn)
        .await
        .context("reading the new API token")?;
    Ok((row, token))
}

/// Returns every token of `user_id`, revoked ones included, newest first.
pub async fn list_tokens(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .select(ApiToken::as_select())
        .load(conn)
        .await
        .context("listing API tokens")
}

/// Revokes token `token_id` of `user_id`. Returns true if it was revoked
/// now, false if the user has no such token or it was already revoked.
pub async fn revoke_token(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    token_id: i64,
) -> anyhow::Result<bool> {
    let changed = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(token_id))
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(diesel::dsl::now.nullable()))
    .execute(conn)
    .await
    .context("revoking an API token")?;
    Ok(changed == 1)
}

/// Returns who `token` speaks for, or `None` if it is malformed (no query
/// is made), unknown, revoked, or its user is disabled (`users.status` 0).
/// Records the use in `last_used_at` if the last record is a minute old or
/// more (one conditional UPDATE; a failed write is logged, not returned, so
/// a busy row never refuses a valid token).
pub async fn authenticate(
    conn: &mut PooledConnection<'_>,
    token: &str,
) -> anyhow::Result<Option<Caller>> {
    if !is_well_formed(token) {
        return Ok(None);
    }
    let found = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(hash_token(token)))
        .filter(api_tokens::revoked_at.is_null())
        .filter(users::status.eq(1))
        .select((api_tokens::id, api_tokens::user_id, users::username, api_tokens::is_operator))
        .first::<(i64, i64, String, bool)>(conn)
        .await
        .optional()
        .context("looking up an API token")?;
    let Some((token_id, user_id, username, is_operator)) = found else {
        return Ok(None);
    };
    let touched = diesel::sql_query(
        "UPDATE api_tokens SET last_used_at = NOW() WHERE id = ? \
         AND (last_used_at IS NULL OR last_used_at < NOW() - INTERVAL 1 MINUTE)",
    )
    .bind::<diesel::sql_types::BigInt, _>(token_id)
    .execute(conn)
    .await;
    if let Err(e) = touched {
        tracing::warn!(token_id, "API token use not recorded: {e}");
    }
    Ok(Some(Caller { user_id, username, token_id, is_operator }))
}

/// True while the token with this id is unrevoked and its user enabled:
/// what a dashboard session made from the token checks on every use, so
/// revoking a token ends its sessions too.
pub async fn is_active(conn: &mut PooledConnection<'_>, token_id: i64) -> anyhow::Result<bool> {
    let found: Option<i64> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::id.eq(token_id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(users::status.eq(1))
        .select(api_tokens::id)
        .first(conn)
        .await
        .optional()
        .context("checking an API token")?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_vc_and_64_hex_characters() {
        let token = generate_token();
        assert_eq!(token.len(), 67, "{token}");
        assert!(token.starts_with("vc_"), "{token}");
        assert!(is_well_formed(&token), "{token}");
        assert!(token[3..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{token}");
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: std::collections::HashSet<String> =
            (0..1000).map(|_| generate_token()).collect();
        assert_eq!(tokens.len(), 1000);
        // Not one UUID twice either: the two halves differ.
        let token = generate_token();
        assert_ne!(token[3..35], token[35..]);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hash_token(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let token = generate_token();
        assert_eq!(hash_token(&token), hash_token(&token));
        assert_eq!(hash_token(&token).len(), 64);
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        let token = generate_token();
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("vc_"));
        assert!(!is_well_formed(&token[..66]));
        assert!(!is_well_formed(&format!("{token}0")));
        assert!(!is_well_formed(&token.to_uppercase()));
        assert!(!is_well_formed(&format!("xx_{}", &token[3..])));
        assert!(!is_well_formed(&format!(" {}", &token[1..])));
        assert!(!is_well_formed(&format!("{}g", &token[..66])));
        assert!(!is_well_formed(&format!("{}é", &token[..65])));
    }
}
