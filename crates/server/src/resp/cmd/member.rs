//! `MEMBER LIST | ADD id peer-addr client-addr | PROMOTE id | REMOVE id | TRANSFER id`:
//! online membership changes of a Raft cluster (see [`crate::membership`]). Admin users only.
//!
//! Every subcommand runs at the leader: another node answers `-MOVED 0 <leader's address>`
//! whatever the follower mode (as `SNAPSHOT` does), or `-TRYAGAIN` while no leader is known.
//! `ADD` adds a learner; `PROMOTE` makes a caught-up learner a voter; both answer `+OK` once
//! the configuration entry is committed. `LIST` answers one line per member, as `CLUSTER
//! NODES` does: `id=4 role=learner peer=IP:PORT client=IP:PORT leader=no behind=12`.
//! Refusals say why (`-ERR learner n4 has not caught up: 1200 entries behind ...`); protocols
//! whose membership is fixed refuse the command by name.

use super::Parse;
use crate::membership::MemberAddress;
use crate::resp::frame::Frame;
use crate::runtime::NodeHandle;
use quorate_core::{AdminCommand, ClientError, NodeId, Role};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// A parsed `MEMBER` subcommand.
#[derive(Debug, PartialEq, Eq)]
pub enum Member {
    List,
    Add { id: NodeId, address: MemberAddress },
    Promote(NodeId),
    Remove(NodeId),
    Transfer(NodeId),
}

const USAGE: &str = "ERR usage: MEMBER LIST | ADD <id> <peer-addr> <client-addr> | PROMOTE <id> | REMOVE <id> | TRANSFER <id>";

impl Member {
    pub fn parse(parse: &mut Parse) -> Result<Member, Frame> {
        let Some(sub) = parse.keyword() else {
            return Err(Frame::error(USAGE));
        };
        let member = match sub.as_str() {
            "LIST" => Member::List,
            "ADD" => {
                let id = node_id(parse)?;
                let peer = addr(parse, "peer")?;
                let client = addr(parse, "client")?;
                if peer == client {
                    return Err(Frame::error(
                        "ERR the peer and client addresses must differ",
                    ));
                }
                Member::Add {
                    id,
                    address: MemberAddress { peer, client },
                }
            }
            "PROMOTE" => Member::Promote(node_id(parse)?),
            "REMOVE" => Member::Remove(node_id(parse)?),
            "TRANSFER" => Member::Transfer(node_id(parse)?),
            other => {
                return Err(Frame::error(format!(
                    "ERR unknown MEMBER subcommand '{other}'; {}",
                    &USAGE[4..]
                )))
            }
        };
        Ok(member)
    }

    /// The subcommand's name, for messages.
    fn name(&self) -> &'static str {
        match self {
            Member::List => "MEMBER LIST",
            Member::Add { .. } => "MEMBER ADD",
            Member::Promote(_) => "MEMBER PROMOTE",
            Member::Remove(_) => "MEMBER REMOVE",
            Member::Transfer(_) => "MEMBER TRANSFER",
        }
    }

    pub async fn execute(self, node: NodeHandle) -> Frame {
        let Some(view) = node.members().await else {
            return Frame::error("ERR the node is stopping");
        };
        let Some((view, status)) = view else {
            return Frame::error(format!(
                "ERR {} does not support online membership changes ({}): its membership is fixed when the cluster is bootstrapped; only raft clusters change membership online",
                node.config.protocol,
                self.name()
            ));
        };
        let command = match self {
            Member::List if status.role == Role::Leader => {
                let rows = view.rows(Some(node.me()), &node.config.peers, |id| {
                    node.peers.client_addr_of(id)
                });
                let mut text = String::new();
                for row in rows {
                    let show = |a: Option<SocketAddr>| a.map_or("?".into(), |a| a.to_string());
                    let _ = writeln!(
                        text,
                        "id={} role={} peer={} client={} leader={} behind={}",
                        row.id.0,
                        row.role,
                        show(row.peer),
                        show(row.client),
                        if row.leader { "yes" } else { "no" },
                        row.behind.map_or("?".into(), |b| b.to_string()),
                    );
                }
                return Frame::Bulk(text.into());
            }
            Member::List => {
                return refusal(
                    &node,
                    ClientError::NotLeader {
                        leader: status.leader,
                    },
                )
            }
            Member::Add { id, address } => AdminCommand::AddLearnerAt {
                id,
                address: address.encode(),
            },
            Member::Promote(id) => AdminCommand::AddVoter(id),
            Member::Remove(id) => AdminCommand::RemoveNode(id),
            Member::Transfer(id) => AdminCommand::TransferLeadership(id),
        };
        let limit = Duration::from_millis(node.config.request_timeout_ms);
        let Some(answer) = node.admin(command).await else {
            return Frame::error("ERR the node is stopping");
        };
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(reply)) => match reply.result {
                Ok(_) => Frame::ok(),
                Err(e) => refusal(&node, e),
            },
            Ok(Err(_)) => Frame::error("ERR the node is stopping"),
            Err(_) => Frame::error(format!(
                "TIMEOUT the change was not committed within {limit:?} (no quorum?); it may still take effect: check MEMBER LIST"
            )),
        }
    }
}

fn node_id(parse: &mut Parse) -> Result<NodeId, Frame> {
    match parse.integer()? {
        id if id >= 1 => Ok(NodeId(id as u64)),
        _ => Err(Frame::error("ERR node ids start at 1")),
    }
}

fn addr(parse: &mut Parse, what: &str) -> Result<SocketAddr, Frame> {
    let bytes = parse.bytes()?;
    String::from_utf8_lossy(&bytes).parse().map_err(|_| {
        Frame::error(format!(
            "ERR the {what} address {:?} is not IP:PORT (example: 127.0.0.1:7104)",
            String::from_utf8_lossy(&bytes)
        ))
    })
}

/// The answer when the node did not make the change.
fn refusal(node: &NodeHandle, error: ClientError) -> Frame {
    if let Some(redirect) = super::to_leader(node, &error, "membership changes are made") {
        return redirect;
    }
    match error {
        ClientError::Rejected(why) => Frame::error(format!("ERR {why}")),
        ClientError::Unavailable => Frame::error(
            "TRYAGAIN the leadership transfer did not complete within an election timeout; the old leader leads on",
        ),
        other => Frame::error(format!(
            "TRYAGAIN no membership change: {other}; try again once a leader is elected"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Command;
    use super::*;
    use bytes::Bytes;

    fn parse(words: &[&str]) -> Result<Command, Frame> {
        let frame = Frame::Array(
            words
                .iter()
                .map(|w| Frame::Bulk(Bytes::copy_from_slice(w.as_bytes())))
                .collect(),
        );
        Command::from_frame(frame, 1024)
    }

    fn member(words: &[&str]) -> Member {
        match parse(words) {
            Ok(Command::Member(member)) => member,
            other => panic!("{words:?} parsed as {other:?}"),
        }
    }

    fn error(words: &[&str]) -> String {
        match parse(words) {
            Err(Frame::Error(e)) => e,
            other => panic!("{words:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn subcommands_parse_case_insensitively() {
        assert_eq!(member(&["member", "list"]), Member::List);
        assert_eq!(
            member(&["MEMBER", "add", "4", "127.0.0.1:7104", "127.0.0.1:6384"]),
            Member::Add {
                id: NodeId(4),
                address: MemberAddress {
                    peer: "127.0.0.1:7104".parse().unwrap(),
                    client: "127.0.0.1:6384".parse().unwrap(),
                },
            }
        );
        assert_eq!(
            member(&["member", "Promote", "4"]),
            Member::Promote(NodeId(4))
        );
        assert_eq!(
            member(&["member", "REMOVE", "2"]),
            Member::Remove(NodeId(2))
        );
        assert_eq!(
            member(&["member", "transfer", "3"]),
            Member::Transfer(NodeId(3))
        );
        let admin = Command::Member(Member::List);
        assert!(admin.is_admin(), "MEMBER is for admin users only");
        assert!(!admin.needs_node() && !admin.is_write());
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(error(&["member"]).starts_with("ERR usage: MEMBER LIST"));
        assert!(error(&["member", "grow", "4"]).contains("unknown MEMBER subcommand 'GROW'"));
        assert_eq!(
            error(&["member", "promote", "0"]),
            "ERR node ids start at 1"
        );
        assert_eq!(
            error(&["member", "remove", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert!(
            error(&["member", "add", "4", "nowhere:1", "127.0.0.1:6384"])
                .contains("the peer address \"nowhere:1\" is not IP:PORT")
        );
        assert!(error(&["member", "add", "4", "127.0.0.1:7104"]).contains("wrong number"));
        assert!(
            error(&["member", "add", "4", "127.0.0.1:1", "127.0.0.1:1"]).contains("must differ")
        );
        assert!(error(&["member", "list", "extra"]).contains("unexpected arguments"));
    }
}
