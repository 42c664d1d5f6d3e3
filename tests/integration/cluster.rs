//! A throwaway PostgreSQL cluster for tests that restart the database itself: the shared
//! server serves every other test and must stay up. initdb into a temp dir on a free port,
//! trust auth, 127.0.0.1 only, its unix socket in the same dir; stopped and removed on Drop,
//! also when the test panics. Binaries of the shared server's major version, which is the
//! one PostGIS is installed for (as `scripts/deps.sh` decides).
//!
//! initdb and the postmaster refuse to run as root, and tests run as root in CI: then every
//! command runs as the `postgres` OS user (`runuser`), in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use tokio::process::Command;

use crate::helpers::{admin_url, connect};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    pub async fn start() -> Self {
        let bin = binaries().await;
        let dir =
            std::env::temp_dir().join(format!("meridian-pg-{}", uuid::Uuid::new_v4().simple()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Owned by whoever runs the server, so it can hold the socket and the log.
        run(as_server_user("mkdir").arg("-m").arg("700").arg(&dir)).await;
        let cluster = Self { dir, bin, port };
        run(cluster
            .tool("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(cluster.data()))
        .await;
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c track_commit_timestamp=on -c max_connections=60 -c shared_buffers=32MB",
            cluster.port,
            cluster.dir.display()
        );
        run(cluster.pg_ctl("start").arg("-o").arg(options)).await;
        cluster
    }

    /// The superuser's URL; the app migrates it itself (PostGIS included).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: active sessions are terminated, in-flight transactions roll
    /// back, a shutdown checkpoint is written, and the server starts again with the same
    /// options. Returns when it accepts connections.
    pub async fn restart_fast(&self) {
        run(self.pg_ctl("restart").args(["-m", "fast"])).await;
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = as_server_user(&self.bin.join(name).to_string_lossy());
        // The caller's working directory may not be readable by the postgres user.
        command.current_dir(&self.dir);
        command
    }

    /// pg_ctl with `-w` and a log file: the postmaster then holds none of our pipes.
    fn pg_ctl(&self, action: &str) -> Command {
        let mut command = self.tool("pg_ctl");
        command
            .arg(action)
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"));
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut stop = if is_root() {
            let mut c = StdCommand::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            StdCommand::new(&pg_ctl)
        };
        let _ = stop
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn as_server_user(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

async fn run(command: &mut Command) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .await
        .expect("PostgreSQL server binaries installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/usr/lib/postgresql/<major>/bin` of the shared server's major version (its PostGIS is
/// installed), else the newest installed one.
async fn binaries() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let num: String = connect(&admin_url())
        .await
        .query_one("SHOW server_version_num", &[])
        .await
        .unwrap()
        .get(0);
    let major = num.parse::<u32>().unwrap() / 10_000;
    let bin = root.join(major.to_string()).join("bin");
    if bin.join("initdb").exists() {
        return bin;
    }
    let mut majors: Vec<u32> = std::fs::read_dir(root)
        .expect("PostgreSQL installed from Debian packages (scripts/deps.sh)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    majors.sort_unstable();
    root.join(
        majors
            .last()
            .expect("a PostgreSQL major version")
            .to_string(),
    )
    .join("bin")
}
