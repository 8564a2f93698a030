//! What the CLI's process tests share.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed (by PID) and reaped when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(args: &[&str], log: &Path) -> Proc {
        let out = fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_quorate"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the quorate binary runs");
        Proc { child }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// SIGTERM (the cluster stops its nodes), then waits for the exit.
    pub fn stop(mut self) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("process {} ignored SIGTERM for 10 s", self.child.id());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The body of `GET /metrics` from a node's metrics port.
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of the sample line that starts with `name` (labels included) and a space.
pub fn sample(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Kills the nodes of a `quorate cluster` by PID if the test panics: the cluster's own guard
/// kills only the cluster process, which leaves its nodes running (and a node stopped with
/// SIGSTOP would ignore a SIGTERM; SIGKILL ends it too).
pub struct KillOnPanic(pub Vec<i32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pid in &self.0 {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
}

/// Removes the manifest (`cluster.json`) in `dir` before a `quorate cluster` starts there: an
/// earlier run's, left on a restart in the same directory, names processes and ports that are
/// gone, and [`wait_for_manifest`] must not read it.
pub fn forget_manifest(dir: &Path) {
    let _ = fs::remove_file(dir.join("cluster.json"));
}

/// The manifest a `quorate cluster` on `dir` writes once its nodes run (within 20 s).
pub fn wait_for_manifest(dir: &Path) -> serde_json::Value {
    let manifest = dir.join("cluster.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = fs::read_to_string(&manifest) {
            if let Ok(json) = serde_json::from_str(&text) {
                return json;
            }
        }
        assert!(Instant::now() < deadline, "no cluster.json in {dir:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
