//! Users' API tokens: `enqueue token create|list|revoke` and
//! `shared::tokens::authenticate`, the check the HTTP API runs, against a
//! real database. The plaintext is printed once and stored nowhere (not in
//! `api_tokens`, not in `operation_logs`); revoked, unknown and malformed
//! tokens do not authenticate; one user's tokens are not another's.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::tokens::Caller;
use std::process::Output;
use support::TestEnv;

fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line expected: {stdout:?}");
    serde_json::from_str(&stdout).expect("one JSON object on stdout")
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn add_user(env: &TestEnv, name: &str) -> i64 {
    let out =
        env.enqueue(&["user", "add", name, "--email", &format!("{name}@example.com"), "--json"]);
    ok_json(&out)["user_id"].as_i64().unwrap()
}

/// `token create USER [EXTRA...] --json`: (token, token_id).
fn create(env: &TestEnv, user: &str, extra: &[&str]) -> (String, i64) {
    let mut args = vec!["token", "create", user, "--json"];
    args.extend_from_slice(extra);
    let value = ok_json(&env.enqueue(&args));
    let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["is_operator", "token", "token_id", "user_id"], "{value}");
    (value["token"].as_str().unwrap().to_string(), value["token_id"].as_i64().unwrap())
}

/// Every column of every row of `table`, as one string.
fn dump(env: &TestEnv, table: &str) -> String {
    format!("{:?}", env.sql(&format!("SELECT * FROM {table}")))
}

/// Runs `authenticate` for each token on one connection.
fn authenticate(env: &TestEnv, tokens: &[&str]) -> Vec<Option<Caller>> {
    runtime().block_on(async {
        let pool = shared::db::connect(&env.database_url, 1).await.unwrap();
        let mut conn = shared::db::conn(&pool).await.unwrap();
        let mut callers = Vec::new();
        for token in tokens {
            callers.push(shared::tokens::authenticate(&mut conn, token).await.unwrap());
        }
        callers
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_token_is_shown_once_stored_hashed_and_authenticates_until_revoked() {
    let env = TestEnv::new();
    let alice = add_user(&env, "alice");
    let bob = add_user(&env, "bob");

    let (token, id) = create(&env, "alice", &["--name", "ci deploys"]);
    assert!(token.starts_with("vc_") && token.len() >= 46, "{token}");
    let secret = &token[11..];

    // Stored: the SHA-256 of the whole token and its first characters.
    let expected_hash = format!("{:x}", Sha256::digest(token.as_bytes()));
    let row = env.sql(&format!(
        "SELECT user_id, name, token_prefix, token_hash, is_operator, last_used_at IS NULL, revoked_at IS NULL FROM api_tokens WHERE id = {id}"
    ));
    assert_eq!(
        row,
        [[
            alice.to_string(),
            "ci deploys".into(),
            token[..11].to_string(),
            expected_hash.clone(),
            "0".into(),
            "1".into(),
            "1".into()
        ]]
    );
    assert_eq!(shared::tokens::hash_token(&token), expected_hash);
    // The plaintext is nowhere in the database's tables it could reach.
    for table in ["api_tokens", "operation_logs"] {
        let all = dump(&env, table);
        assert!(!all.contains(&token) && !all.contains(secret), "token in {table}: {all}");
    }
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM operation_logs WHERE operation = 'enqueue token create' AND resource_type = 'api_token' AND user_id = {alice} AND status = 1"
        )),
        1
    );

    // An operator token, human output: the token and a shown-once line.
    let out = env.enqueue(&["token", "create", "bob", "--operator"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let operator_token = stdout.lines().next().unwrap().trim().to_string();
    assert!(shared::tokens::is_well_formed(&operator_token), "{stdout}");
    assert!(stdout.contains("shown only this once"), "{stdout}");

    let callers = authenticate(&env, &[token.as_str(), operator_token.as_str()]);
    let caller = callers[0].clone().expect("alice's token authenticates");
    assert_eq!(
        caller,
        Caller { user_id: alice, username: "alice".into(), token_id: id, is_operator: false }
    );
    let operator = callers[1].clone().expect("bob's token authenticates");
    assert_eq!(
        (operator.user_id, operator.username.as_str(), operator.is_operator),
        (bob, "bob", true)
    );

    // last_used_at: written on use, then at most once a minute.
    let used = |env: &TestEnv| {
        env.count(&format!(
            "SELECT TIMESTAMPDIFF(SECOND, last_used_at, NOW()) FROM api_tokens WHERE id = {id}"
        ))
    };
    assert!(used(&env) <= 5, "last_used_at set on use");
    env.sql(&format!(
        "UPDATE api_tokens SET last_used_at = NOW() - INTERVAL 30 SECOND WHERE id = {id}"
    ));
    assert!(authenticate(&env, &[token.as_str()])[0].is_some());
    assert!(used(&env) >= 29, "not written again within a minute");
    env.sql(&format!(
        "UPDATE api_tokens SET last_used_at = NOW() - INTERVAL 2 MINUTE WHERE id = {id}"
    ));
    assert!(authenticate(&env, &[token.as_str()])[0].is_some());
    assert!(used(&env) <= 5, "written again after a minute");

    // Listed with its prefix, never the secret or the hash.
    let listed = json_lines(&env.enqueue(&["token", "list", "alice", "--json"]));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["user_id"], alice);
    assert_eq!(listed[0]["name"], "ci deploys");
    assert_eq!(listed[0]["token_prefix"], &token[..11]);
    assert_eq!(listed[0]["is_operator"], false);
    assert!(listed[0]["created_at"].as_str().unwrap().ends_with('Z'), "{listed:?}");
    assert!(listed[0]["last_used_at"].is_string(), "{listed:?}");
    assert!(listed[0]["revoked_at"].is_null(), "{listed:?}");
    let text = format!("{listed:?}");
    assert!(!text.contains(secret) && !text.contains(&expected_hash), "{text}");
    assert!(listed[0].get("token_hash").is_none() && listed[0].get("token").is_none());
    let out = env.enqueue(&["token", "list", "alice"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("PREFIX") && table.contains(&token[..11]), "{table}");
    assert!(table.contains("ci deploys"), "{table}");
    assert!(!table.contains(secret) && !table.contains(&expected_hash), "{table}");

    // Bob cannot revoke alice's token by its id.
    assert_refused(&env.enqueue(&["token", "revoke", "bob", &id.to_string()]), "bob has no token");
    assert!(authenticate(&env, &[token.as_str()])[0].is_some(), "still valid");

    // Revoked: no longer authenticates; still listed, with its time.
    let value = ok_json(&env.enqueue(&["token", "revoke", "alice", &id.to_string(), "--json"]));
    assert_eq!(value["revoked"], true);
    assert_eq!(authenticate(&env, &[token.as_str()]), [None]);
    assert!(authenticate(&env, &[operator_token.as_str()])[0].is_some(), "other tokens stay valid");
    let listed = json_lines(&env.enqueue(&["token", "list", "alice", "--json"]));
    assert!(listed[0]["revoked_at"].is_string(), "{listed:?}");
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM operation_logs WHERE operation = 'enqueue token revoke' AND resource_type = 'api_token' AND resource_id = '{id}' AND user_id = {alice} AND status = 1"
        )),
        1
    );

    // Twice, or an id that does not exist: exit 2, one line.
    assert_refused(&env.enqueue(&["token", "revoke", "alice", &id.to_string()]), "already revoked");
    assert_refused(
        &env.enqueue(&["token", "revoke", "alice", "999999"]),
        "alice has no token 999999",
    );
    // The failed revokes are audited too, as failures.
    assert_eq!(
        env.count("SELECT COUNT(*) FROM operation_logs WHERE operation = 'enqueue token revoke' AND status = 0"),
        3
    );

    // Still nowhere in the database after all of it.
    for table in ["api_tokens", "operation_logs"] {
        let all = dump(&env, table);
        for t in [&token, &operator_token] {
            assert!(!all.contains(t.as_str()) && !all.contains(&t[11..]), "token in {table}");
        }
    }
}

#[test]
fn unknown_and_malformed_tokens_do_not_authenticate_and_malformed_ones_make_no_query() {
    let env = TestEnv::new();
    add_user(&env, "carol");
    let (token, _) = create(&env, "carol", &[]);
    let unknown = shared::tokens::generate_token();
    let malformed: Vec<String> = vec![
        String::new(),
        "Bearer x".into(),
        "vc_".into(),
        token[..token.len() - 1].to_string(),
        format!("{token}0"),
        token.to_uppercase(),
        format!("{}' OR '1'='1", &token[..40]),
    ];

    // The server's count of statements this session sent, read before and
    // after each call: a malformed token adds nothing to the reads' own.
    #[derive(diesel::QueryableByName)]
    struct Status {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = Value)]
        value: String,
    }
    async fn questions(conn: &mut shared::db::PooledConnection<'_>) -> i64 {
        let rows: Vec<Status> = diesel_async::RunQueryDsl::load(
            diesel::sql_query("SHOW SESSION STATUS LIKE 'Questions'"),
            conn,
        )
        .await
        .unwrap();
        rows[0].value.parse().unwrap()
    }
    runtime().block_on(async {
        let pool = shared::db::connect(&env.database_url, 1).await.unwrap();
        let mut conn = shared::db::conn(&pool).await.unwrap();
        let a = questions(&mut conn).await;
        let b = questions(&mut conn).await;
        let reads = b - a;
        for bad in &malformed {
            let before = questions(&mut conn).await;
            assert_eq!(shared::tokens::authenticate(&mut conn, bad).await.unwrap(), None, "{bad}");
            let after = questions(&mut conn).await;
            assert_eq!(after - before, reads, "{bad:?} reached the database");
        }
        // A well-formed unknown token is looked up (so the count does see
        // queries), and refused.
        let before = questions(&mut conn).await;
        assert_eq!(shared::tokens::authenticate(&mut conn, &unknown).await.unwrap(), None);
        let after = questions(&mut conn).await;
        assert!(after - before > reads, "the lookup was counted");
        assert!(shared::tokens::authenticate(&mut conn, &token).await.unwrap().is_some());
    });
}

#[test]
fn tokens_belong_to_their_user_and_unknown_users_are_refused() {
    let env = TestEnv::new();
    let dave = add_user(&env, "dave");
    let erin = add_user(&env, "erin");
    let (_, d1) = create(&env, "dave", &["--name", "one"]);
    let (_, d2) = create(&env, "dave", &["--name", "two", "--operator"]);
    let (_, e1) = create(&env, "erin", &[]);

    let ids = |user: &str| -> Vec<i64> {
        json_lines(&env.enqueue(&["token", "list", user, "--json"]))
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("dave"), [d2, d1], "newest first");
    assert_eq!(ids("erin"), [e1]);
    let listed = json_lines(&env.enqueue(&["token", "list", "dave", "--json"]));
    assert!(listed.iter().all(|v| v["user_id"] == dave), "{listed:?}");
    assert_eq!(listed[0]["is_operator"], true);
    assert!(json_lines(&env.enqueue(&["token", "list", "erin", "--json"]))
        .iter()
        .all(|v| v["user_id"] == erin));

    // Erin cannot revoke dave's tokens; dave's stay unrevoked.
    assert_refused(
        &env.enqueue(&["token", "revoke", "erin", &d1.to_string()]),
        "erin has no token",
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL"), 0);

    // Unknown users: exit 2, nothing written.
    for args in [
        &["token", "create", "nobody"][..],
        &["token", "create", "nobody", "--operator", "--name", "x"][..],
        &["token", "list", "nobody"][..],
        &["token", "revoke", "nobody", &d1.to_string()][..],
    ] {
        assert_refused(&env.enqueue(args), "unknown user \"nobody\"");
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM api_tokens"), 3);
    // A name too long for the column: exit 2 before anything is written.
    let long = "n".repeat(101);
    assert_refused(&env.enqueue(&["token", "create", "dave", "--name", &long]), "at most 100");
    assert_eq!(env.count("SELECT COUNT(*) FROM api_tokens"), 3);

    // A token pasted into a command line by mistake is redacted in the audit row.
    let pasted = shared::tokens::generate_token();
    let out = env.enqueue(&["token", "create", "erin", &format!("--name={pasted}")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let audit = dump(&env, "operation_logs");
    assert!(!audit.contains(&pasted), "{audit}");
    assert!(audit.contains("--name=vc_***"), "{audit}");
}
