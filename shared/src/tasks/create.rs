//! Creating tasks: the only way into `pending` (status 0).

use super::*;

/// Inserts pending tasks, [`BATCH_ROWS`] per statement, each statement in
/// a transaction with its status history, and returns how many rows were
/// written.
pub async fn insert_tasks(
    conn: &mut PooledConnection<'_>,
    tasks: &[NewTask],
) -> anyhow::Result<usize> {
    let mut written = 0;
    for chunk in tasks.chunks(BATCH_ROWS) {
        written += conn
            .transaction(async |conn| -> anyhow::Result<usize> {
                insert_recorded(conn, chunk).await
            })
            .await?;
    }
    Ok(written)
}

/// Inserts `tasks` (at most [`BATCH_ROWS`]) and records their creation in
/// `task_status_history`, for a caller inside a transaction (so both
/// commit or neither). Returns the rows inserted.
pub(crate) async fn insert_recorded(
    conn: &mut diesel_async::AsyncMysqlConnection,
    tasks: &[NewTask],
) -> anyhow::Result<usize> {
    let n = diesel::insert_into(pt::table)
        .values(tasks)
        .execute(conn)
        .await
        .context("inserting processing_tasks rows")?;
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    crate::history::record_created(conn, &ids).await?;
    Ok(n)
}
