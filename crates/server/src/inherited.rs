//! Listening sockets handed down by the process that started this one.
//!
//! `quorate cluster --free-ports` chooses each node's ports by binding them (see
//! [`crate::ports`]). If it released them before starting the nodes, another process could
//! take a port in between: a cluster started at the same moment draws its ports from the
//! same range. The node then fails with "address already in use" (seen in test runs on a
//! loaded machine: a test's SIGSTOP met a node that had exited). Had the port been a peer port, the other cluster's
//! node would answer in its place: the two clusters' nodes share ids, and `quorate cluster`
//! gave every cluster the same id, so the handshake let messages for one reach the other.
//!
//! So the parent keeps every chosen port bound and hands the bound socket itself to the node:
//! [`pass`] clears close-on-exec on the sockets in the child only and names their descriptors
//! in [`ENV`]; the node calls [`adopt_from_env`] first thing, and [`take`] gives each socket
//! to the listener whose address it is bound to. No port is ever free between the choice and
//! the node's listen. A node restarted later (`quorate cluster restart`) binds its ports
//! again by itself; nothing else holds them while it is down, so clients see "connection
//! refused", not a listener that never accepts.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::process::Command;
use std::sync::Mutex;

/// The environment variable naming the inherited descriptors: `5,6,7`.
pub const ENV: &str = "QUORATE_LISTEN_FDS";

/// Adopted and not yet taken.
static ADOPTED: Mutex<Vec<TcpListener>> = Mutex::new(Vec::new());

/// Lets `command`'s process inherit `listeners` (bound, listening sockets) and tells it their
/// descriptors in [`ENV`]. The command keeps the parent's copies open until it is dropped;
/// they stay close-on-exec, so no other child inherits them.
pub fn pass(command: &mut Command, listeners: Vec<TcpListener>) {
    if listeners.is_empty() {
        return;
    }
    let names: Vec<String> = listeners
        .iter()
        .map(|l| l.as_raw_fd().to_string())
        .collect();
    command.env(ENV, names.join(","));
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls
    // are allowed: `fcntl` is one, and the closure neither allocates nor locks (it reads the
    // listeners moved into it, which keeps their descriptors open until the spawn).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            for listener in &listeners {
                use nix::fcntl::{fcntl, FcntlArg, FdFlag};
                fcntl(listener.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
            }
            Ok(())
        });
    }
}

/// Takes the listening sockets [`ENV`] names and removes the variable. Call it once, at
/// start-up, while the process has a single thread (it changes the environment). Refuses a
/// descriptor that is not a listening TCP socket, or one named twice.
pub fn adopt_from_env() -> Result<usize, String> {
    let Some(text) = std::env::var_os(ENV) else {
        return Ok(0);
    };
    std::env::remove_var(ENV);
    let text = text
        .into_string()
        .map_err(|_| format!("{ENV} is not text"))?;
    let mut adopted = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let fd: RawFd = part
            .trim()
            .parse()
            .map_err(|_| format!("{ENV}: {part:?} is not a file descriptor"))?;
        if fd < 3 || !seen.insert(fd) {
            return Err(format!("{ENV}: descriptor {fd} is stdio or named twice"));
        }
        adopted.push(adopt(fd)?);
    }
    let count = adopted.len();
    lock().extend(adopted);
    Ok(count)
}

/// `fd` as a listener, if it is an open, listening TCP socket; otherwise an error, with the
/// descriptor left as it was.
fn adopt(fd: RawFd) -> Result<TcpListener, String> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use nix::sys::socket::{
        getsockname, getsockopt, sockopt, AddressFamily, SockaddrLike, SockaddrStorage,
    };
    fcntl(fd, FcntlArg::F_GETFD)
        .map_err(|e| format!("{ENV}: descriptor {fd} is not open ({e})"))?;
    // SAFETY: `fd` is open (checked above); it is only borrowed, for the checks below.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if getsockopt(&borrowed, sockopt::AcceptConn) != Ok(true) {
        return Err(format!("{ENV}: descriptor {fd} is not a listening socket"));
    }
    let family = getsockname::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| a.family());
    let stream = getsockopt(&borrowed, sockopt::SockType) == Ok(nix::sys::socket::SockType::Stream);
    if !stream || !matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6)) {
        return Err(format!("{ENV}: descriptor {fd} is not a TCP socket"));
    }
    // Not passed on to anything this process starts.
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| format!("{ENV}: descriptor {fd}: {e}"))?;
    // SAFETY: the descriptor was inherited and nothing else in this process owns it: only
    // `adopt_from_env`, which runs once, takes the descriptors ENV names, each once.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}

/// The adopted listener bound to `addr`, if there is one.
pub fn take(addr: SocketAddr) -> Option<TcpListener> {
    let mut adopted = lock();
    let at = adopted
        .iter()
        .position(|l| l.local_addr().ok() == Some(addr))?;
    Some(adopted.swap_remove(at))
}

/// Closes the adopted listeners no address asked for, and returns their addresses.
pub fn close_unused() -> Vec<SocketAddr> {
    lock()
        .drain(..)
        .filter_map(|l| l.local_addr().ok())
        .collect()
}

fn lock() -> std::sync::MutexGuard<'static, Vec<TcpListener>> {
    ADOPTED.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_listener_reaches_the_child_bound_and_listening() {
        // The child is a shell that reports whether its descriptor is open: `pass` cleared
        // close-on-exec there, and the variable names it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "fd=${QUORATE_LISTEN_FDS}; [ -e /proc/self/fd/$fd ] && echo open:$fd",
        ]);
        let passed = listener.try_clone().unwrap();
        let fd = passed.as_raw_fd();
        pass(&mut command, vec![passed]);
        let out = command.output().unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            format!("open:{fd}")
        );
        drop(command);
        // Without `pass`, the same descriptor is closed at exec.
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("[ -e /proc/self/fd/{} ] && echo open", listener.as_raw_fd()),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "");
    }

    #[test]
    fn adopt_refuses_what_is_not_a_listening_socket() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd = file.as_raw_fd();
        let err = adopt_checked(fd);
        assert!(err.contains("not a listening socket"), "{err}");
        drop(file);
        let err = adopt_checked(1_000_000);
        assert!(err.contains("is not open"), "{err}");
        let stream_side = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(stream_side.local_addr().unwrap()).unwrap();
        let err = adopt_checked(client.as_raw_fd());
        assert!(err.contains("not a listening socket"), "{err}");
    }

    /// `adopt` on a descriptor that something else owns: the error path only (a success
    /// would make two owners; the descriptor is leaked then, and the test fails).
    fn adopt_checked(fd: RawFd) -> String {
        match adopt(fd) {
            Ok(listener) => {
                std::mem::forget(listener);
                panic!("descriptor {fd} was adopted")
            }
            Err(e) => e,
        }
    }

    #[test]
    fn adopt_takes_a_listening_tcp_socket_and_refuses_a_unix_one() {
        let tmp = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(tmp.path().join("s")).unwrap();
        let err = adopt_checked(unix.as_raw_fd());
        assert!(err.contains("not a TCP socket"), "{err}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
        let adopted = adopt(fd).expect("a listening TCP socket is adopted");
        assert_eq!(adopted.local_addr().unwrap(), addr);
    }
}
