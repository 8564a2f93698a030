//! `quorate member list|add|promote|remove|transfer-leader`: grow, shrink and inspect a running
//! Raft cluster, as `etcdctl member ...` and `etcdctl move-leader` do.
//!
//! Each action sends `MEMBER ...` (see `quorate_server::membership`) to `--endpoints`,
//! following `-MOVED` to the leader and waiting out `-TRYAGAIN` (an election) until
//! `--timeout`. `add` adds the node as a learner, then promotes it as soon as its log has
//! caught up (retrying while the leader answers that it has not), unless `--learner` is given.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use quorate_server::resp::client::{self, ClientTls};
use quorate_server::resp::frame::Frame;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct MemberArgs {
    #[command(subcommand)]
    action: Action,
    /// Client addresses of any of the cluster's nodes; the request goes to the leader.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:6381"
    )]
    endpoints: Vec<SocketAddr>,
    /// The cluster CA (PEM), for nodes whose client port speaks TLS.
    #[arg(long, global = true, value_name = "CA_FILE")]
    tls: Option<PathBuf>,
    /// The user to AUTH as (an `admin` user; default: `default`).
    #[arg(long, global = true)]
    user: Option<String>,
    /// The password to AUTH with [default: $QUORATE_PASSWORD, which keeps it out of `ps`].
    #[arg(long, global = true)]
    password: Option<String>,
    /// Give up after this long (`add` includes waiting for the learner to catch up).
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List the members: role, addresses, leader, and how far each is behind the leader.
    List,
    /// Add a node (started with `quorate serve --join`) as a learner, then promote it to voter
    /// once it has caught up.
    Add {
        id: u64,
        /// Where the new node listens for peers.
        #[arg(long, value_name = "IP:PORT")]
        peer_addr: SocketAddr,
        /// Where the new node serves clients.
        #[arg(long, value_name = "IP:PORT")]
        client_addr: SocketAddr,
        /// Stop after adding it as a learner (promote it later with `member promote`).
        #[arg(long)]
        learner: bool,
    },
    /// Make a caught-up learner a voter.
    Promote { id: u64 },
    /// Remove a member (a removed leader steps down once the change commits).
    Remove { id: u64 },
    /// Hand leadership to another voter.
    TransferLeader { id: u64 },
}

pub fn run(mut args: MemberArgs) -> anyhow::Result<ExitCode> {
    let tls =
        crate::snapshot_cmd::client_access(&args.user, &mut args.password, args.tls.as_deref())?;
    let session = Session {
        args: &args,
        tls: tls.as_ref(),
        deadline: Instant::now() + args.timeout,
    };
    match &args.action {
        Action::List => print!("{}", session.list()?),
        Action::Add {
            id,
            peer_addr,
            client_addr,
            learner,
        } => {
            let (peer, client) = (peer_addr.to_string(), client_addr.to_string());
            let id_text = id.to_string();
            session.ok(&["MEMBER", "ADD", &id_text, &peer, &client])?;
            println!("added node {id} as a learner (peer {peer}, client {client})");
            if !learner {
                session.promote(*id)?;
                println!("promoted node {id} to voter");
            }
        }
        Action::Promote { id } => {
            session.ok(&["MEMBER", "PROMOTE", &id.to_string()])?;
            println!("promoted node {id} to voter");
        }
        Action::Remove { id } => {
            session.ok(&["MEMBER", "REMOVE", &id.to_string()])?;
            println!("removed node {id}");
        }
        Action::TransferLeader { id } => {
            session.ok(&["MEMBER", "TRANSFER", &id.to_string()])?;
            println!("node {id} leads");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Hops from node to node following `MOVED`, at most, per request.
const HOPS_MAX: usize = 5;

struct Session<'a> {
    args: &'a MemberArgs,
    tls: Option<&'a ClientTls>,
    deadline: Instant,
}

impl Session<'_> {
    /// Sends `words` until a node other than a redirecting one answers; returns its answer.
    fn call(&self, words: &[&str]) -> anyhow::Result<Frame> {
        let mut endpoints = self.args.endpoints.iter().copied().cycle();
        let mut addr = endpoints.next().ok_or_else(|| anyhow!("no --endpoints"))?;
        let mut hops = 0;
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        auth.extend(self.args.user.as_deref().map(str::as_bytes));
        auth.extend(self.args.password.as_deref().map(str::as_bytes));
        let command: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        loop {
            let mut commands: Vec<&[&[u8]]> = Vec::new();
            if self.args.password.is_some() {
                commands.push(&auth);
            }
            commands.push(&command);
            let left = self.deadline.saturating_duration_since(Instant::now());
            let replies =
                client::exchange_over(addr, &commands, left.max(Duration::from_secs(1)), self.tls);
            let mut replies = match replies {
                Ok(replies) => replies,
                Err(e) if Instant::now() < self.deadline => {
                    eprintln!("{addr}: {e}; trying the next endpoint");
                    std::thread::sleep(Duration::from_millis(200));
                    addr = endpoints.next().expect("cycles");
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("asking {addr}")),
            };
            let answer = replies.pop().expect("one reply per command");
            if let Some(Frame::Error(e)) = replies.pop() {
                bail!("{addr} refused AUTH: {e}");
            }
            let Frame::Error(error) = &answer else {
                return Ok(answer);
            };
            if let Some(leader) = error.strip_prefix("MOVED 0 ") {
                hops += 1;
                if hops > HOPS_MAX {
                    bail!(
                        "followed {HOPS_MAX} redirects without reaching the leader (last: {error})"
                    );
                }
                addr = leader
                    .trim()
                    .parse()
                    .with_context(|| format!("{addr} redirected to {leader:?}"))?;
            } else if error.starts_with("TRYAGAIN") && Instant::now() < self.deadline {
                std::thread::sleep(Duration::from_millis(200));
            } else {
                return Ok(answer);
            }
        }
    }

    /// Sends `words`, which must be answered `+OK`.
    fn ok(&self, words: &[&str]) -> anyhow::Result<()> {
        match self.call(words)? {
            Frame::Simple(s) if s == "OK" => Ok(()),
            Frame::Error(e) => bail!("{}: {e}", words[..2].join(" ")),
            other => bail!("{} answered {other:?}", words[..2].join(" ")),
        }
    }

    fn list(&self) -> anyhow::Result<String> {
        match self.call(&["MEMBER", "LIST"])? {
            Frame::Bulk(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
            Frame::Error(e) => bail!("MEMBER LIST: {e}"),
            other => bail!("MEMBER LIST answered {other:?}"),
        }
    }

    /// Promotes `id`, retrying while the leader says the learner has not caught up yet.
    fn promote(&self, id: u64) -> anyhow::Result<()> {
        let id_text = id.to_string();
        let words = ["MEMBER", "PROMOTE", &id_text];
        let mut said = false;
        loop {
            let error = match self.call(&words)? {
                Frame::Simple(s) if s == "OK" => return Ok(()),
                Frame::Error(e) => e,
                other => bail!("MEMBER PROMOTE answered {other:?}"),
            };
            let retry = error.contains("has not caught up")
                || error.contains("in progress")
                || error.contains("not committed yet")
                || error.contains("retry shortly");
            if !retry || Instant::now() >= self.deadline {
                bail!("MEMBER PROMOTE: {error} (node {id} stays a learner; `quorate member promote {id}` retries)");
            }
            if !said {
                eprintln!("waiting for node {id} to catch up: {error}");
                said = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
