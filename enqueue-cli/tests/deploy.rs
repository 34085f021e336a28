//! The systemd units and environment file under `deploy/`: systemd accepts
//! every unit without a warning, each starts one of the project's binaries,
//! the worker's stop timeout covers its grace period, and every variable of
//! the example environment file is one the README documents.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

fn deploy_dir() -> PathBuf {
    support::project_root().join("deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name)).unwrap()
}

/// `key=value` settings of a unit or env file (comments and sections out).
fn settings(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

const UNITS: &[&str] =
    &["videoclip-scheduler.service", "videoclip-worker@.service", "videoclip-api.service"];

#[test]
fn systemd_accepts_every_unit_and_each_runs_a_project_binary() {
    let dir = support::project_root().join(format!(".local/tests/deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin_dir = support::bin_dir();
    let mut paths = Vec::new();
    for unit in UNITS {
        let text = read(unit);
        let exec = &settings(&text)["ExecStart"];
        let binary = exec.split_whitespace().next().unwrap();
        let name = binary.strip_prefix("/usr/local/bin/").expect("installed in /usr/local/bin");
        assert!(bin_dir.join(name).exists(), "{unit} starts {name}, not a project binary");
        // The binaries are not installed here: point at the built ones, and
        // verify everything else as written.
        let local = text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        let file = unit.replace("@.service", "@1.service");
        std::fs::write(dir.join(&file), local).unwrap();
        paths.push(dir.join(file));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze (scripts/services.sh install)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_worker_is_given_longer_to_stop_than_its_grace_period() {
    let env = settings(&read("videoclip.env.example"));
    let grace: u64 = env["WORKER_GRACE_SECONDS"].parse().unwrap();
    let worker = settings(&read("videoclip-worker@.service"));
    let timeout: u64 = worker["TimeoutStopSec"].parse().unwrap();
    assert!(timeout >= grace + 5, "TimeoutStopSec {timeout} vs grace {grace}");
    assert_eq!(worker["KillSignal"], "SIGTERM");
    for unit in UNITS {
        let unit_settings = settings(&read(unit));
        assert_eq!(unit_settings["EnvironmentFile"], "/etc/videoclip/videoclip.env", "{unit}");
        assert_eq!(unit_settings["Restart"], "always", "{unit}");
    }
}

#[test]
fn every_variable_of_the_example_env_file_is_documented() {
    let readme = std::fs::read_to_string(support::project_root().join("README.md")).unwrap();
    for name in settings(&read("videoclip.env.example")).keys() {
        assert!(readme.contains(&format!("`{name}`")), "{name} is not in the README");
    }
}
