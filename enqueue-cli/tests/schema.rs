//! The migrations create the seed schema: every table, column and index of
//! docs/seed/video-clip-database-design.md sections 3 and 5.1 (minus
//! the documented exceptions), plus the queue protocol's additions and
//! `api_tokens`.

mod support;

use support::TestEnv;

/// (table, index) pairs the seed names, as the migration keeps them.
const SEED_INDEXES: &[(&str, &str)] = &[
    ("users", "uk_username"),
    ("users", "uk_email"),
    ("users", "idx_status"),
    ("users", "idx_created_at"),
    ("user_configs", "uk_user_key"),
    ("user_configs", "idx_user_id"),
    ("user_quotas", "uk_user_quota_type"),
    ("user_quotas", "idx_user_id"),
    ("user_quotas", "idx_quota_type"),
    ("videos", "idx_user_id"),
    ("videos", "idx_status"),
    ("videos", "idx_created_at"),
    ("videos", "idx_file_hash"),
    ("videos", "idx_upload_id"),
    ("videos", "idx_user_status_created"),
    ("processing_tasks", "uk_task_id"),
    ("processing_tasks", "idx_user_id"),
    ("processing_tasks", "idx_video_id"),
    ("processing_tasks", "idx_priority"),
    ("processing_tasks", "idx_created_at"),
    ("processing_tasks", "idx_user_status_priority"),
    ("processing_results", "idx_task_id"),
    ("processing_results", "idx_user_id"),
    ("processing_results", "idx_video_id"),
    ("processing_results", "idx_result_type"),
    ("video_segments", "uk_segment_id"),
    ("video_segments", "idx_task_id"),
    ("video_segments", "idx_user_id"),
    ("video_segments", "idx_original_video_id"),
    ("video_segments", "idx_selling_point_type"),
    ("video_segments", "idx_duration"),
    ("video_segments", "idx_created_at"),
    ("video_segments", "idx_user_type_created"),
    ("templates", "uk_template_id"),
    ("templates", "idx_user_id"),
    ("templates", "idx_type"),
    ("templates", "idx_category"),
    ("templates", "idx_is_public"),
    ("templates", "idx_is_system"),
    ("templates", "idx_usage_count"),
    ("templates", "idx_status"),
    ("download_records", "uk_download_id"),
    ("download_records", "idx_user_id"),
    ("download_records", "idx_status"),
    ("download_records", "idx_expires_at"),
    ("download_records", "idx_created_at"),
    ("download_records", "idx_user_status_expires"),
    ("operation_logs", "idx_user_id"),
    ("operation_logs", "idx_operation"),
    ("operation_logs", "idx_resource_type"),
    ("operation_logs", "idx_status"),
    ("operation_logs", "idx_created_at"),
    ("operation_logs", "idx_user_agent_prefix"),
    ("system_configs", "uk_config_key"),
    ("system_configs", "idx_is_public"),
    // Queue protocol additions.
    ("processing_tasks", "idx_queue"),
    ("processing_tasks", "idx_waiting_since"),
    // API tokens (migration 11).
    ("api_tokens", "uk_token_hash"),
    ("api_tokens", "idx_user_id"),
];

/// Column counts per table: the seed's columns, plus five on processing_tasks.
const COLUMNS: &[(&str, i64)] = &[
    ("users", 11),
    ("user_configs", 6),
    ("user_quotas", 9),
    ("videos", 18),
    ("processing_tasks", 19 + 5),
    ("processing_results", 10),
    ("video_segments", 19),
    ("templates", 19),
    ("download_records", 15),
    ("operation_logs", 13),
    ("system_configs", 7),
    // Queue protocol addition: status history (migration 3).
    ("task_status_history", 8),
    // API tokens (migration 11).
    ("api_tokens", 9),
];

#[test]
fn migrations_create_every_seed_table_column_and_index() {
    let env = TestEnv::new();
    let tables = env.sql(&format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND table_name <> '__diesel_schema_migrations' ORDER BY 1",
        env.database
    ));
    let mut expected: Vec<&str> = COLUMNS.iter().map(|(t, _)| *t).collect();
    expected.sort();
    let mut found: Vec<&str> = tables.iter().map(|r| r[0].as_str()).collect();
    found.sort();
    assert_eq!(found, expected, "tables");

    for (table, columns) in COLUMNS {
        let n = env.count(&format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '{}' AND table_name = '{table}'",
            env.database
        ));
        assert_eq!(n, *columns, "column count of {table}");
    }
    for (table, index) in SEED_INDEXES {
        let n = env.count(&format!(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = '{}' AND table_name = '{table}' AND index_name = '{index}'",
            env.database
        ));
        assert!(n > 0, "index {index} missing on {table}");
    }
    // Foreign keys: 14 in the seed, plus api_tokens -> users.
    let fks = env.count(&format!(
        "SELECT COUNT(*) FROM information_schema.referential_constraints WHERE constraint_schema = '{}'",
        env.database
    ));
    assert_eq!(fks, 15, "foreign keys");
    // utf8mb4 everywhere.
    let not_utf8mb4 = env.count(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_collation <> 'utf8mb4_unicode_ci'",
        env.database
    ));
    assert_eq!(not_utf8mb4, 0);
    // The generated duration column works.
    let generated = env.count(&format!(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '{}' AND table_name = 'video_segments' AND column_name = 'duration' AND extra LIKE '%GENERATED%'",
        env.database
    ));
    assert_eq!(generated, 1, "video_segments.duration is generated");
}

#[test]
fn migrate_is_idempotent() {
    let env = TestEnv::new();
    let out = env.enqueue(&["migrate", "--json"]);
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["applied"], serde_json::json!([]));
}

#[test]
fn the_scheduler_query_uses_its_index_without_filesort() {
    let env = TestEnv::new();
    let plan = env.sql(
        "EXPLAIN SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_queue) \
         WHERE status = 0 AND queued_at IS NULL AND next_attempt_at <= NOW(3) ORDER BY priority, id LIMIT 1000 FOR UPDATE SKIP LOCKED",
    );
    let text = format!("{plan:?}");
    assert!(text.contains("idx_queue"), "plan: {text}");
    assert!(!text.contains("filesort"), "plan sorts: {text}");
}
