//! The cache-aside read (`shared::cache::Cache::read_through`) against a
//! private `redis-server`: miss then hit, the fill lease that keeps a value
//! read before a writer's delete from being stored after it, and reads that
//! go on when Redis is gone; and the first `task:status` of new tasks,
//! which never overwrites a later one.
//!
//! The database side is a closure here (what it returns, and when a writer
//! deletes the key, is up to the test); the real readers and writers are
//! exercised end to end in `enqueue-cli/tests/config.rs`.

use serde::{Deserialize, Serialize};
use shared::cache::{Cache, Lookup};
use shared::models::TaskStatus;
use shared::queue::{CachedStatus, Queue};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    name: String,
}

fn row(name: &str) -> Option<Row> {
    Some(Row { name: name.into() })
}

/// A redis-server without persistence on a free port, killed on drop.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (run scripts/services.sh up to install it)");
        let redis = Redis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn cache(redis: &Redis) -> Cache {
    Cache::new(&Queue::connect(&redis.url()).await.unwrap())
}

#[tokio::test]
async fn a_miss_fills_the_key_with_its_ttl_and_the_next_read_hits() {
    let redis = Redis::start();
    let cache = cache(&redis).await;
    let (value, lookup) =
        cache.read_through("test", "t:1".into(), 3600, || async { Ok(row("db")) }).await.unwrap();
    assert_eq!((value, lookup), (row("db"), Lookup::Miss));
    assert_eq!(redis.cli(&["GET", "t:1"]), r#"{"name":"db"}"#);
    let ttl: i64 = redis.cli(&["TTL", "t:1"]).parse().unwrap();
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");

    let (value, lookup) = cache
        .read_through("test", "t:1".into(), 3600, || async {
            panic!("a hit must not read the database")
        })
        .await
        .unwrap();
    assert_eq!((value, lookup), (row("db"), Lookup::Hit));

    // No row: nothing is stored, not even the lease.
    let (value, _) = cache
        .read_through::<Row, _, _>("test", "t:2".into(), 3600, || async { Ok(None) })
        .await
        .unwrap();
    assert_eq!(value, None);
    assert_eq!(redis.cli(&["EXISTS", "t:2"]), "0");

    // An unreadable value is replaced from the database.
    redis.cli(&["SET", "t:3", "not json"]);
    let (value, lookup) =
        cache.read_through("test", "t:3".into(), 60, || async { Ok(row("fresh")) }).await.unwrap();
    assert_eq!((value, lookup), (row("fresh"), Lookup::Miss));
    assert_eq!(redis.cli(&["GET", "t:3"]), r#"{"name":"fresh"}"#);
}

#[tokio::test]
async fn a_delete_during_the_database_read_keeps_the_old_value_out() {
    let redis = Redis::start();
    let cache = cache(&redis).await;
    // The reader reads the old row; meanwhile a writer commits and deletes
    // the key (as `invalidate_*` does after a commit).
    let port = redis.port.to_string();
    let (value, _) = cache
        .read_through("test", "t:race".into(), 3600, || async move {
            let out =
                Command::new("redis-cli").args(["-p", &port, "DEL", "t:race"]).output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "1",
                "the lease was there to delete"
            );
            Ok(row("old"))
        })
        .await
        .unwrap();
    assert_eq!(value, row("old"), "the reader still answers with what it read");
    assert_eq!(
        redis.cli(&["EXISTS", "t:race"]),
        "0",
        "the stale value was stored after the delete"
    );

    // Next reader: fills from the (now new) database.
    let (value, lookup) = cache
        .read_through("test", "t:race".into(), 3600, || async { Ok(row("new")) })
        .await
        .unwrap();
    assert_eq!((value, lookup), (row("new"), Lookup::Miss));
    assert_eq!(redis.cli(&["GET", "t:race"]), r#"{"name":"new"}"#);
}

#[tokio::test]
async fn another_readers_lease_means_read_but_do_not_store() {
    let redis = Redis::start();
    let cache = cache(&redis).await;
    redis.cli(&["SET", "t:busy", "fill:someone-else", "PX", "10000"]);
    let (value, lookup) = cache
        .read_through("test", "t:busy".into(), 3600, || async { Ok(row("db")) })
        .await
        .unwrap();
    assert_eq!((value, lookup), (row("db"), Lookup::Miss));
    assert_eq!(redis.cli(&["GET", "t:busy"]), "fill:someone-else");
}

#[tokio::test]
async fn reads_go_on_without_redis() {
    let mut redis = Redis::start();
    let cache = cache(&redis).await;
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let started = Instant::now();
    let (value, lookup) = cache
        .read_through("test", "t:gone".into(), 3600, || async { Ok(row("db")) })
        .await
        .unwrap();
    assert_eq!((value, lookup), (row("db"), Lookup::Bypassed));
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    let disabled = Cache::disabled();
    let (value, lookup) = disabled
        .read_through("test", "t:none".into(), 3600, || async { Ok(row("db")) })
        .await
        .unwrap();
    assert_eq!((value, lookup), (row("db"), Lookup::Bypassed));
}

#[tokio::test]
async fn a_new_tasks_first_status_written_late_leaves_a_later_one_alone() {
    let redis = Redis::start();
    let queue = Queue::connect(&redis.url()).await.unwrap();
    let (claimed, fresh) = ("task-claimed".to_string(), "task-fresh".to_string());
    // A worker claimed the first task before its creator wrote "pending".
    let running = CachedStatus::now(TaskStatus::Processing, 10, Some("transcribe"));
    queue.set_statuses(&[(claimed.clone(), running)]).await.unwrap();
    shared::registration::cache_pending(&queue, &[claimed.clone(), fresh.clone()]).await;
    let statuses = queue.get_statuses(&[claimed, fresh]).await.unwrap();
    let codes: Vec<Option<i8>> = statuses.iter().map(|s| s.as_ref().map(|s| s.status)).collect();
    assert_eq!(codes, [Some(TaskStatus::Processing.code()), Some(TaskStatus::Pending.code())]);
    let ttl: i64 = redis.cli(&["TTL", "task:status:task-fresh"]).parse().unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "ttl {ttl}");
}
