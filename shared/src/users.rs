//! All SQL on `users`.

use crate::db::PooledConnection;
use crate::models::{NewUser, User};
use crate::schema::users;
use crate::BadInput;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Creates a user and returns its id. A taken name or e-mail is [`BadInput`].
pub async fn create_user(
    conn: &mut PooledConnection<'_>,
    username: &str,
    email: &str,
) -> anyhow::Result<i64> {
    let inserted = diesel::insert_into(users::table)
        .values(NewUser { username, email, password_hash: "!" })
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(BadInput::new(format!(
                "a user named {username:?} or with e-mail {email:?} already exists"
            ))
            .into())
        }
        Err(e) => return Err(e).context("creating a user"),
    }
    let user = find_user(conn, username).await?.context("the new user vanished")?;
    Ok(user.id)
}

/// The user called `username`, if any.
pub async fn find_user(
    conn: &mut PooledConnection<'_>,
    username: &str,
) -> anyhow::Result<Option<User>> {
    users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
        .context("looking up a user")
}

/// The user called `username`, or [`BadInput`] naming it.
pub async fn require_user(conn: &mut PooledConnection<'_>, username: &str) -> anyhow::Result<User> {
    find_user(conn, username).await?.ok_or_else(|| {
        BadInput::new(format!("unknown user {username:?} (create it with `enqueue user add`)"))
            .into()
    })
}

/// The user called `username`, created (with a placeholder e-mail) if it
/// does not exist yet. Used for the system user that owns no-op tasks.
pub async fn ensure_user(conn: &mut PooledConnection<'_>, username: &str) -> anyhow::Result<User> {
    if let Some(user) = find_user(conn, username).await? {
        return Ok(user);
    }
    let email = format!("{username}@system.invalid");
    diesel::insert_or_ignore_into(users::table)
        .values(NewUser { username, email: &email, password_hash: "!" })
        .execute(conn)
        .await
        .context("creating a system user")?;
    find_user(conn, username).await?.context("the system user vanished")
}

/// The user with this id, if any.
pub async fn find_user_by_id(
    conn: &mut PooledConnection<'_>,
    id: i64,
) -> anyhow::Result<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
        .context("looking up a user")
}

/// User names by id for the given ids (unknown ids are absent): one query
/// for a page of rows that only carry `user_id`.
pub async fn usernames(
    conn: &mut PooledConnection<'_>,
    ids: &[i64],
) -> anyhow::Result<std::collections::HashMap<i64, String>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::username))
        .load::<(i64, String)>(conn)
        .await
        .context("reading user names")?
        .into_iter()
        .collect())
}
