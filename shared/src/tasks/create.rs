//! Creating tasks: the only way into `pending` (status 0).

use super::*;

/// Inserts pending tasks, [`BATCH_ROWS`] per statement, and returns how many
/// rows were written.
pub async fn insert_tasks(
    conn: &mut PooledConnection<'_>,
    tasks: &[NewTask],
) -> anyhow::Result<usize> {
    let mut written = 0;
    for chunk in tasks.chunks(BATCH_ROWS) {
        written += diesel::insert_into(pt::table)
            .values(chunk)
            .execute(conn)
            .await
            .context("inserting processing_tasks rows")?;
    }
    Ok(written)
}
