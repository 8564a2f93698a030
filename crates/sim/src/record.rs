//! What happened in a run, as data: the event record behind `--trace` and the HTML view.
//!
//! The simulation reports every observable event to an observer (see
//! [`run_observed`](crate::run_observed)): messages sent, delivered, dropped and duplicated,
//! crashes, restarts, pauses and partitions, role and term changes, persists and commits,
//! timers, and the clients' operations with the history's process numbers. Recording costs
//! nothing when no one observes, and changes neither the random draws nor the trace hash, so a
//! seed replays identically with or without it.
//!
//! Lanes are named as people read them: `n1`.. for nodes, `p7` for the history's process 7,
//! `p1099511627776` and up for the final reads (as the history numbers them) and `admin` for the reconfiguration nemesis. Messages are
//! described by [`summarize`], which turns a `Debug` rendering into `Name field=value ...`
//! with byte strings as text, lists as their length and nested values in brackets, so every
//! protocol's messages read alike without code of their own.

use serde::Serialize;
use std::fmt;

/// One event of a run, at true simulated time `time` (nanoseconds).
#[derive(Clone, Debug, Serialize)]
pub struct RunEvent {
    #[serde(rename = "t")]
    pub time: u64,
    #[serde(flatten)]
    pub what: What,
}

/// What happened. Serialized with the kind in `k`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum What {
    /// A message left `from` for `to`; `id` names it until it is delivered or dropped.
    /// `copy`: a duplicate the network made, `late`: a stale re-delivery scheduled.
    Send {
        id: u64,
        from: String,
        to: String,
        msg: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        copy: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// Message `id` arrived.
    Deliver {
        id: u64,
        from: String,
        to: String,
        msg: String,
    },
    /// A message was lost: at sending (`id` 0 when it never got one) or on arrival.
    Drop {
        id: u64,
        from: String,
        to: String,
        msg: String,
        why: &'static str,
    },
    /// A client operation was invoked or completed, as the history records it.
    Op {
        process: u64,
        /// `invoke`, `ok`, `fail` or `info`.
        phase: &'static str,
        op: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A node's role, term (epoch, view, ballot) or known leader changed.
    Role {
        node: String,
        role: String,
        term: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        leader: Option<String>,
    },
    /// A node's commit index advanced.
    Commit {
        node: String,
        index: u64,
    },
    /// A node started an fsync of `records` records.
    Persist {
        node: String,
        records: usize,
    },
    /// The fsync finished.
    Persisted {
        node: String,
    },
    /// A timer fired.
    Timer {
        node: String,
        timer: String,
    },
    /// The node's process started, with the records that survived.
    Start {
        node: String,
        records: usize,
    },
    /// The node crashed (`detail`: what the disk kept, or the crash point).
    Crash {
        node: String,
        detail: String,
    },
    /// The node's process stopped for `length` nanoseconds.
    Pause {
        node: String,
        length: u64,
    },
    Resume {
        node: String,
        queued: usize,
    },
    /// A partition: `cut` lists the blocked directed links `[from, to]`.
    Partition {
        description: String,
        cut: Vec<[String; 2]>,
    },
    /// Every link works again.
    PartitionHealed,
    /// The fault phase ended: everything healed.
    Heal,
    /// Anything else worth a line (disk faults, recovery, final reads, reconfiguration).
    Note {
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        text: String,
    },
}

impl What {
    /// The lane the event is drawn on (its node, or the sender of a message).
    pub fn lane(&self) -> Option<&str> {
        match self {
            What::Send { from, .. } | What::Drop { from, .. } => Some(from),
            What::Deliver { to, .. } => Some(to),
            What::Role { node, .. }
            | What::Commit { node, .. }
            | What::Persist { node, .. }
            | What::Persisted { node }
            | What::Timer { node, .. }
            | What::Start { node, .. }
            | What::Crash { node, .. }
            | What::Pause { node, .. }
            | What::Resume { node, .. } => Some(node),
            What::Note { node, .. } => node.as_deref(),
            What::Op { .. } | What::Partition { .. } | What::PartitionHealed | What::Heal => None,
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Send {
                id,
                to,
                msg,
                copy,
                late,
                ..
            } => {
                let extra = match (copy, late) {
                    (true, _) => " (duplicate)",
                    (_, true) => " (stale copy, delivered late)",
                    _ => "",
                };
                write!(f, "send #{id} {msg} → {to}{extra}")
            }
            What::Deliver { id, from, msg, .. } => write!(f, "recv #{id} {msg} ← {from}"),
            What::Drop {
                id, to, msg, why, ..
            } => {
                let id = if *id == 0 {
                    String::new()
                } else {
                    format!("#{id} ")
                };
                write!(f, "drop {id}{msg} → {to} ({why})")
            }
            What::Op {
                phase,
                op,
                node,
                error,
                ..
            } => {
                write!(f, "{phase} {op}")?;
                if let Some(node) = node {
                    write!(f, " at {node}")?;
                }
                if let Some(error) = error {
                    write!(f, " ({error})")?;
                }
                Ok(())
            }
            What::Role {
                role, term, leader, ..
            } => {
                write!(f, "role {role} term={term}")?;
                if let Some(leader) = leader {
                    write!(f, " leader={leader}")?;
                }
                Ok(())
            }
            What::Commit { index, .. } => write!(f, "commit {index}"),
            What::Persist { records, .. } => write!(f, "fsync {records} records"),
            What::Persisted { .. } => write!(f, "fsync done"),
            What::Timer { timer, .. } => write!(f, "timer {timer}"),
            What::Start { records, .. } => write!(f, "start ({records} records survived)"),
            What::Crash { detail, .. } => write!(f, "crash ({detail})"),
            What::Pause { length, .. } => {
                write!(f, "pause for {}", quorate_core::Time::from_nanos(*length))
            }
            What::Resume { queued, .. } => write!(f, "resume ({queued} events queued)"),
            What::Partition { description, .. } => write!(f, "nemesis: partition {description}"),
            What::PartitionHealed => write!(f, "nemesis: partition healed"),
            What::Heal => write!(f, "heal: all faults removed; liveness phase"),
            What::Note { text, .. } => write!(f, "{text}"),
        }
    }
}

impl fmt::Display for RunEvent {
    /// One trace line: time, lane, what happened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = quorate_core::Time::from_nanos(self.time);
        let lane = match &self.what {
            What::Op { process, .. } => format!("p{process}"),
            other => other.lane().unwrap_or("--").to_string(),
        };
        write!(f, "{:>14} {lane:>6} {}", at.to_string(), self.what)
    }
}

/// The lane of node index `i`.
pub fn node_lane(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The longest summary [`summarize`] returns, in characters.
const SUMMARY_MAX: usize = 160;

/// A readable one-line summary of a `Debug` rendering: `AppendEntries { term: 3, entries:
/// [..2 entries..], leader_commit: 13 }` becomes `AppendEntries term=3 entries=2
/// leader_commit=13`; `b"k0"` becomes `k0`, `NodeId(2)` becomes `n2`, `Some(x)` becomes `x`,
/// and a nested struct becomes its field values in brackets. Text that does not parse as
/// `Debug` output is returned cut to length.
pub fn summarize(debug: &str) -> String {
    let mut parser = Parser {
        text: debug.as_bytes(),
        at: 0,
    };
    let text = match parser.value() {
        Some(value) if parser.at >= parser.text.len() => top(&value),
        _ => debug.to_string(),
    };
    cut(text)
}

fn cut(mut text: String) -> String {
    if text.chars().count() > SUMMARY_MAX {
        text = text.chars().take(SUMMARY_MAX - 1).collect();
        text.push('…');
    }
    text
}

/// A parsed `Debug` value.
enum Value {
    /// A number, identifier or other bare word (`true`, `None`, `Leader`).
    Word(String),
    /// A string or byte string, unescaped as far as needed to read it.
    Text(String),
    /// `Name { a: x, b: y }` (a map `{x: y}` has an empty name and keyless fields).
    Struct(String, Vec<(String, Value)>),
    /// `Name(x, y)`, and tuples with an empty name.
    Tuple(String, Vec<Value>),
    List(Vec<Value>),
}

/// The top level: `Name field=value ...`, looking through newtype wrappers.
fn top(value: &Value) -> String {
    match value {
        Value::Struct(name, fields) => {
            let mut out = name.clone();
            for (field, value) in fields {
                out.push(' ');
                if !field.is_empty() {
                    out.push_str(field);
                    out.push('=');
                }
                out.push_str(&inner(value, 0));
            }
            out
        }
        Value::Tuple(name, items) if items.len() == 1 => match &items[0] {
            inner_value @ (Value::Struct(..) | Value::Tuple(..)) => {
                let rest = top(inner_value);
                if rest.starts_with(name.as_str()) || name.is_empty() {
                    rest
                } else {
                    format!("{name} {rest}")
                }
            }
            other => format!("{name} {}", inner(other, 0)),
        },
        Value::Tuple(name, items) => {
            let items: Vec<String> = items.iter().map(|v| inner(v, 0)).collect();
            format!("{name} {}", items.join(" "))
        }
        other => inner(other, 0),
    }
}

/// A field's value: compact, and shallower the deeper it is.
fn inner(value: &Value, depth: usize) -> String {
    match value {
        Value::Word(word) => word.clone(),
        Value::Text(text) => text.clone(),
        Value::List(items) => items.len().to_string(),
        Value::Tuple(name, items) if items.len() == 1 => match (name.as_str(), &items[0]) {
            ("NodeId", Value::Word(n)) => format!("n{n}"),
            ("Some" | "Ok", item) => inner(item, depth),
            ("Err", item) => format!("error:{}", inner(item, depth)),
            (_, item @ (Value::Word(_) | Value::Text(_))) => inner(item, depth),
            (name, item) if depth >= 1 => format!("{name}(…{})", short(item)),
            (name, item) => format!("{name}({})", inner(item, depth + 1)),
        },
        Value::Tuple(..) | Value::Struct(..) if depth >= 2 => "…".into(),
        Value::Tuple(name, items) => {
            let items: Vec<String> = items.iter().map(|v| inner(v, depth + 1)).collect();
            format!("{name}({})", items.join(","))
        }
        Value::Struct(name, fields) => {
            let items: Vec<String> = fields.iter().map(|(_, v)| inner(v, depth + 1)).collect();
            let name = if depth == 0 { "" } else { name.as_str() };
            format!("{name}({})", items.join(","))
        }
    }
}

fn short(value: &Value) -> String {
    match value {
        Value::List(items) => format!("{} items", items.len()),
        _ => String::new(),
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string(),
            b'b' if self.text.get(self.at + 1) == Some(&b'"') => {
                self.at += 1;
                self.string()
            }
            b'[' => {
                self.at += 1;
                Some(Value::List(self.items(b']')?))
            }
            b'(' => {
                self.at += 1;
                Some(Value::Tuple(String::new(), self.items(b')')?))
            }
            b'{' => {
                self.at += 1;
                Some(Value::Struct(String::new(), self.fields()?))
            }
            _ => {
                let word = self.word()?;
                match self.peek() {
                    Some(b'{') => {
                        self.at += 1;
                        Some(Value::Struct(word, self.fields()?))
                    }
                    Some(b'(') => {
                        self.at += 1;
                        Some(Value::Tuple(word, self.items(b')')?))
                    }
                    _ => Some(Value::Word(word)),
                }
            }
        }
    }

    fn word(&mut self) -> Option<String> {
        let start = self.at;
        while let Some(&c) = self.text.get(self.at) {
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+' | b':') {
                // `::` belongs to paths; a single `:` ends a field name (handled by `fields`).
                if c == b':' && self.text.get(self.at + 1) != Some(&b':') {
                    break;
                }
                self.at += if c == b':' { 2 } else { 1 };
            } else {
                break;
            }
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.text[start..self.at]).into())
    }

    fn string(&mut self) -> Option<Value> {
        self.at += 1; // The opening quote.
        let mut out = Vec::new();
        while let Some(&c) = self.text.get(self.at) {
            self.at += 1;
            match c {
                b'"' => return Some(Value::Text(String::from_utf8_lossy(&out).into())),
                b'\\' => {
                    let escaped = *self.text.get(self.at)?;
                    self.at += 1;
                    match escaped {
                        b'n' => out.push(b'\n'),
                        b'x' => {
                            let hex = self.text.get(self.at..self.at + 2)?;
                            self.at += 2;
                            let hex = std::str::from_utf8(hex).ok()?;
                            out.push(u8::from_str_radix(hex, 16).ok()?);
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        None
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') && self.peek() != Some(close) {
                return None;
            }
        }
    }

    fn fields(&mut self) -> Option<Vec<(String, Value)>> {
        let mut fields = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(fields);
            }
            if self.eat(b'.') {
                // `..` of a non-exhaustive Debug.
                self.eat(b'.');
                continue;
            }
            let first = self.value()?;
            if self.eat(b':') {
                let name = match first {
                    Value::Word(word) => word,
                    other => inner(&other, 1),
                };
                fields.push((name, self.value()?));
            } else {
                fields.push((String::new(), first));
            }
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_the_papers() {
        let debug = "AppendEntries { term: 3, prev_log_index: 14, prev_log_term: 2, entries: \
                     [Entry { term: 3, command: Put }, Entry { term: 3, command: Get }], \
                     leader_commit: 13, round: 5 }";
        assert_eq!(
            summarize(debug),
            "AppendEntries term=3 prev_log_index=14 prev_log_term=2 entries=2 leader_commit=13 \
             round=5"
        );
        assert_eq!(
            summarize("Put { key: b\"k0\", value: b\"7\" }"),
            "Put key=k0 value=7"
        );
        assert_eq!(
            summarize("Prepare(Prepare { ballot: Ballot { round: 4, node: NodeId(2) } })"),
            "Prepare ballot=(4,n2)"
        );
        assert_eq!(
            summarize("Vote { from: NodeId(3), granted: true, value: None }"),
            "Vote from=n3 granted=true value=None"
        );
        assert_eq!(summarize("Heartbeat"), "Heartbeat");
        assert_eq!(summarize("not { debug"), "not { debug");
    }

    #[test]
    fn long_summaries_are_cut() {
        let long = format!("Big {{ data: \"{}\" }}", "x".repeat(500));
        let summary = summarize(&long);
        assert_eq!(summary.chars().count(), SUMMARY_MAX);
        assert!(summary.ends_with('…'));
    }
}
