//! All SQL on `operation_logs`: the audit trail of state-changing CLI
//! commands (who ran what, with which arguments, what it changed, how long
//! it took, whether it worked).

use crate::db::PooledConnection;
use crate::schema::operation_logs as ol;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// One audited operation.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ol)]
pub struct Operation {
    pub user_id: Option<i64>,
    pub operation: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_data: Option<serde_json::Value>,
    pub response_data: Option<serde_json::Value>,
    pub execution_time: Option<i32>,
    pub status: i8,
    pub error_message: Option<String>,
}

/// Writes one audit row.
pub async fn record(conn: &mut PooledConnection<'_>, operation: &Operation) -> anyhow::Result<()> {
    diesel::insert_into(ol::table)
        .values(operation)
        .execute(conn)
        .await
        .context("writing operation_logs")?;
    Ok(())
}
