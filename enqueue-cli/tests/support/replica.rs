//! A MariaDB primary and a replica of a test's own (binlog replication with
//! GTID), each a [`PrivateMariaDb`]. The same layout as
//! `scripts/services.sh up --db replica`.

use super::PrivateMariaDb;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct ReplicatedMariaDb {
    pub primary: PrivateMariaDb,
    pub replica: PrivateMariaDb,
}

impl ReplicatedMariaDb {
    /// Starts both servers under `parent` and the replica's replication
    /// from the primary's first binlog event (`MASTER_USE_GTID=slave_pos`).
    pub fn start(parent: &Path) -> ReplicatedMariaDb {
        let primary = PrivateMariaDb::start_with(
            &parent.join("primary"),
            &["--log-bin=primary-bin", "--server-id=1", "--binlog-format=ROW"].map(String::from),
        );
        let replica = PrivateMariaDb::start_with(
            &parent.join("replica"),
            &["--server-id=2", "--relay-log=replica-relay"].map(String::from),
        );
        let deployment = ReplicatedMariaDb { primary, replica };
        deployment.on_replica(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', \
             MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
            deployment.primary.port
        ));
        deployment.wait_until_running();
        deployment
    }

    /// Runs SQL on the replica (no database selected); returns its output
    /// without column names.
    pub fn on_replica(&self, sql: &str) -> String {
        self.replica_client(sql, "-N")
    }

    fn replica_client(&self, sql: &str, names: &str) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", names, "-B", "-uroot", "-h127.0.0.1"])
            .arg(format!("-P{}", self.replica.port))
            .arg("-e")
            .arg(sql)
            .output()
            .expect("mariadb client");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until both replication threads run.
    pub fn wait_until_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.replica_client("SHOW SLAVE STATUS\\G", "--column-names");
            if status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes")
            {
                return;
            }
            assert!(Instant::now() < deadline, "replication did not start:\n{status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the replica has applied everything the primary wrote.
    pub fn wait_until_caught_up(&self) {
        let primary_position = {
            let out = Command::new("mariadb")
                .args(["--no-defaults", "-N", "-B", "-uroot", "-h127.0.0.1"])
                .arg(format!("-P{}", self.primary.port))
                .args(["-e", "SELECT @@gtid_binlog_pos"])
                .output()
                .expect("mariadb client");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let waited = self.on_replica(&format!("SELECT MASTER_GTID_WAIT('{primary_position}', 30)"));
        assert_eq!(waited.trim(), "0", "the replica did not reach {primary_position} in 30 s");
    }
}
