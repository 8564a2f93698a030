//! `quorate snapshot save|status|restore`: backups, as `etcdctl snapshot` does them.
//!
//! - `save FILE --addr HOST:PORT`: asks a node for `SNAPSHOT` (following `-MOVED` to the
//!   leader), checks the answer as `status` would, and writes it atomically: a temp file
//!   beside FILE, fsync, rename, fsync of the directory. A crash leaves FILE as it was.
//! - `status FILE`: the header, after checking the checksum and decoding the whole store.
//! - `restore FILE --data-dir D --nodes N`: the data directories of a new N-node cluster in
//!   `D/n1 ... D/nN` (the layout `quorate cluster --data-dir D` uses), or with `--node-id I`
//!   node I's directory `D` alone (for `quorate serve --data-dir D` on its own machine).
//!
//! The format, how the copy is made consistent and what a restored directory holds are in
//! `quorate_server::backup`.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use quorate_core::NodeId;
use quorate_server::backup::{self, Backup, Seed};
use quorate_server::resp::client::{self, ClientTls};
use quorate_server::resp::frame::Frame;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Save a consistent snapshot of a running cluster's data to FILE.
    Save(SaveArgs),
    /// Check a snapshot file and print its header.
    Status { file: PathBuf },
    /// Seed the data directories of a new cluster from a snapshot file.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
struct SaveArgs {
    file: PathBuf,
    /// Any node's client address; the snapshot is taken at the leader it names.
    #[arg(long, default_value = "127.0.0.1:6381")]
    addr: SocketAddr,
    /// The cluster CA (PEM), for nodes whose client port speaks TLS (`quorate certs` wrote
    /// DIR/ca.pem).
    #[arg(long, value_name = "CA_FILE")]
    tls: Option<PathBuf>,
    /// The user to AUTH as (an `admin` user; default: `default`).
    #[arg(long)]
    user: Option<String>,
    /// The password to AUTH with [default: $QUORATE_PASSWORD, which keeps it out of `ps`].
    #[arg(long)]
    password: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Largest snapshot accepted, in MiB.
    #[arg(long, default_value_t = 4096)]
    max_mib: usize,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    file: PathBuf,
    /// Where to write: the cluster directory (D/n1 ... D/nN), or with --node-id the node's own
    /// data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Members of the new cluster (1 to 9); need not be the old cluster's size.
    #[arg(long)]
    nodes: u64,
    /// Write only this node's directory, as DIR itself.
    #[arg(long)]
    node_id: Option<u64>,
    /// The new cluster's protocol [default: the snapshot's]. Any protocol with a log works:
    /// they all replicate the same store.
    #[arg(long)]
    protocol: Option<String>,
    /// The new cluster's id, which its nodes must be started with (`quorate cluster
    /// --cluster-id`, `cluster_id` in a config) [default: quorate].
    #[arg(long, default_value = "quorate")]
    cluster_id: String,
    /// Replace the contents of non-empty data directories.
    #[arg(long)]
    force: bool,
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Save(save_args) => save(save_args),
        Action::Status { file } => status(&file),
        Action::Restore(restore_args) => restore(restore_args),
    }
}

fn read(file: &Path) -> anyhow::Result<Backup> {
    let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    backup::decode(&bytes).map_err(|e| anyhow!("{}: {e}", file.display()))
}

fn status(file: &Path) -> anyhow::Result<ExitCode> {
    let Backup { header, .. } = read(file)?;
    let created = std::time::UNIX_EPOCH + Duration::from_millis(header.created_unix_ms);
    println!("file:           {}", file.display());
    println!("checksum:       ok (crc32c)");
    println!("format:         {}", backup::FORMAT_VERSION);
    println!("protocol:       {}", header.protocol);
    println!(
        "cluster:        {:?} of {} node(s)",
        header.cluster_id, header.cluster_size
    );
    println!("taken at node:  {}", header.node);
    println!("index:          {}", header.index);
    println!("term:           {}", header.term);
    println!("keys:           {}", header.keys);
    println!("sessions:       {}", header.sessions);
    println!(
        "created:        {}",
        humantime::format_rfc3339_seconds(created)
    );
    println!("quorate:        {}", header.quorate_version);
    Ok(ExitCode::SUCCESS)
}

/// The credentials and TLS trust of a command that talks to a node as a client (`snapshot
/// save`, `member`): the password defaults to `$QUORATE_PASSWORD` (kept out of `ps`), a user
/// needs one, and `--tls CA` trusts the cluster's CA.
pub(crate) fn client_access(
    user: &Option<String>,
    password: &mut Option<String>,
    tls: Option<&std::path::Path>,
) -> anyhow::Result<Option<ClientTls>> {
    if password.is_none() {
        *password = std::env::var("QUORATE_PASSWORD").ok();
    }
    if user.is_some() && password.is_none() {
        bail!("--user needs --password (or QUORATE_PASSWORD)");
    }
    Ok(match tls {
        Some(ca) => Some(quorate_server::tls::client_config(ca)?),
        None => None,
    })
}

fn save(mut args: SaveArgs) -> anyhow::Result<ExitCode> {
    let tls = client_access(&args.user, &mut args.password, args.tls.as_deref())?;
    let bytes = fetch(&args, tls.as_ref())?;
    let Backup { header, .. } =
        backup::decode(&bytes).map_err(|e| anyhow!("the node answered a bad snapshot: {e}"))?;
    write_atomically(&args.file, &bytes)?;
    println!(
        "saved {} keys at index {} (term {}) of {} node {} to {} ({} bytes)",
        header.keys,
        header.index,
        header.term,
        header.protocol,
        header.node,
        args.file.display(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Hops from node to node following `MOVED`, at most.
const HOPS_MAX: usize = 5;

/// The snapshot's bytes, from the leader (following `MOVED`, waiting out `TRYAGAIN` until the
/// timeout).
fn fetch(args: &SaveArgs, tls: Option<&ClientTls>) -> anyhow::Result<Vec<u8>> {
    let deadline = Instant::now() + args.timeout;
    let mut addr = args.addr;
    let mut hops = 0;
    let mut auth: Vec<&[u8]> = vec![b"AUTH"];
    auth.extend(args.user.as_deref().map(str::as_bytes));
    auth.extend(args.password.as_deref().map(str::as_bytes));
    loop {
        let mut commands: Vec<&[&[u8]]> = Vec::new();
        if args.password.is_some() {
            commands.push(&auth);
        }
        commands.push(&[b"SNAPSHOT"]);
        let left = deadline.saturating_duration_since(Instant::now());
        let mut replies = client::exchange_with(
            addr,
            &commands,
            left.max(Duration::from_secs(1)),
            tls,
            args.max_mib << 20,
        )
        .with_context(|| format!("asking {addr} for a snapshot"))?;
        let answer = replies.pop().expect("one reply per command");
        if let Some(Frame::Error(e)) = replies.pop() {
            bail!("{addr} refused AUTH: {e}");
        }
        let error = match answer {
            Frame::Bulk(bytes) => return Ok(bytes.to_vec()),
            Frame::Error(e) => e,
            other => bail!("{addr} answered SNAPSHOT with {other:?}"),
        };
        if let Some(leader) = error.strip_prefix("MOVED 0 ") {
            hops += 1;
            if hops > HOPS_MAX {
                bail!("followed {HOPS_MAX} redirects without reaching the leader (last: {error})");
            }
            addr = leader
                .trim()
                .parse()
                .with_context(|| format!("{addr} redirected to {leader:?}"))?;
        } else if error.starts_with("TRYAGAIN") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        } else {
            bail!("{addr}: {error}");
        }
    }
}

/// Writes `bytes` to `file` so that `file` is either what it was or all of `bytes`.
fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", file.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut out = fs::File::create(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&tmp, file)?;
        fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow!("writing {}: {e}", file.display())
    })
}

fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if !(1..=9).contains(&args.nodes) {
        bail!("--nodes must be between 1 and 9, not {}", args.nodes);
    }
    let members: Vec<NodeId> = (1..=args.nodes).map(NodeId).collect();
    if let Some(id) = args.node_id {
        if !(1..=args.nodes).contains(&id) {
            bail!("--node-id {id} is not one of the {} nodes", args.nodes);
        }
    }
    let Backup { header, store } = read(&args.file)?;
    let protocol = args.protocol.unwrap_or(header.protocol.clone());
    backup::has_store(&protocol).map_err(|why| anyhow!("cannot restore into {protocol}: {why}"))?;
    let targets: Vec<(NodeId, PathBuf)> = match args.node_id {
        Some(id) => vec![(NodeId(id), args.data_dir.clone())],
        None => members
            .iter()
            .map(|id| (*id, args.data_dir.join(format!("n{}", id.0))))
            .collect(),
    };
    fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    for (id, dir) in &targets {
        let seed = Seed {
            protocol: &protocol,
            cluster_id: &args.cluster_id,
            id: *id,
            members: &members,
            store: &store,
        };
        backup::restore_dir(&seed, dir, args.force)?;
        println!(
            "restored node {} of {} into {}",
            id.0,
            args.nodes,
            dir.display()
        );
    }
    println!(
        "{} keys from {} index {} (cluster {:?}); start the new {protocol} cluster with:",
        header.keys, header.protocol, header.index, header.cluster_id
    );
    match args.node_id {
        None => println!(
            "  quorate cluster --protocol {protocol} --nodes {} --cluster-id {} --data-dir {}",
            args.nodes,
            args.cluster_id,
            args.data_dir.display()
        ),
        Some(id) => println!(
            "  quorate serve --protocol {protocol} --id {id} --cluster-id {} --data-dir {} --peers ... (every member restored the same way)",
            args.cluster_id,
            args.data_dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
