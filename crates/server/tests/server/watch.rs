//! Keyspace notifications, pub/sub and the change feed (`crate::watch`), over raw RESP.

use crate::common::TestCluster;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A raw connection: send bytes, read until an exact reply has arrived.
struct Raw {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).unwrap();
    }

    /// Reads until `want.len()` bytes came (at most 5 s) and checks they are `want`.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.buffer.len() < want.len() && Instant::now() < deadline {
            let mut chunk = [0u8; 4096];
            if let Ok(n) = self.stream.read(&mut chunk) {
                assert!(
                    n > 0,
                    "closed; got {:?}",
                    String::from_utf8_lossy(&self.buffer)
                );
                self.buffer.extend_from_slice(&chunk[..n]);
            }
        }
        let got: Vec<u8> = self
            .buffer
            .drain(..want.len().min(self.buffer.len()))
            .collect();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// Sends `command` and checks the whole reply.
    fn call(&mut self, command: &str, want: &str) {
        self.send(command);
        self.expect(want);
    }

    /// Nothing more arrives within `wait`.
    fn quiet(&mut self, wait: Duration) {
        std::thread::sleep(wait);
        let mut chunk = [0u8; 4096];
        if let Ok(n) = self.stream.read(&mut chunk) {
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        assert!(
            self.buffer.is_empty(),
            "unexpected {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn push(words: &[&str], resp3: bool) -> String {
    let tag = if resp3 { '>' } else { '*' };
    let mut out = format!("{tag}{}\r\n", words.len());
    for w in words {
        out += &bulk(w);
    }
    out
}

/// A (un)subscribe confirmation.
fn confirm(word: &str, name: &str, count: usize, resp3: bool) -> String {
    let tag = if resp3 { '>' } else { '*' };
    format!("{tag}3\r\n{}{}:{count}\r\n", bulk(word), bulk(name))
}

#[test]
fn keyspace_notifications_arrive_as_redis_sends_them_in_commit_order_on_every_node() {
    let cluster = TestCluster::start(3, |_| {});
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let mut subscribers = Vec::new();
    for node in [leader, follower] {
        let mut sub = Raw::connect(cluster.client_addr(node));
        sub.call(
            "CONFIG GET notify-keyspace-events\r\n",
            "*2\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n",
        );
        sub.call("CONFIG SET notify-keyspace-events KEA\r\n", "+OK\r\n");
        sub.call(
            "CONFIG GET notify-keyspace-events\r\n",
            &format!("*2\r\n{}{}", bulk("notify-keyspace-events"), bulk("AKE")),
        );
        sub.call(
            "PSUBSCRIBE __keyspace@0__:* __keyevent@0__:del\r\n",
            &[
                confirm("psubscribe", "__keyspace@0__:*", 1, false),
                confirm("psubscribe", "__keyevent@0__:del", 2, false),
            ]
            .concat(),
        );
        // RESP2 in subscribed mode: only pub/sub commands and PING.
        sub.call(
            "GET k\r\n",
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
        );
        sub.call("PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        subscribers.push(sub);
    }
    // Writes through a follower (forwarded) and the leader, each acknowledged before the next.
    let mut writer = Raw::connect(cluster.client_addr(follower));
    writer.call("SET k v\r\n", "+OK\r\n");
    writer.call("APPEND k w\r\n", ":2\r\n");
    writer.call("INCRBY n 5\r\n", ":5\r\n");
    writer.call("DEL k nothere\r\n", ":1\r\n");
    writer.call("SET k2 v PX 60000\r\n", "+OK\r\n");
    let pmessage = |channel: &str, payload: &str, pattern: &str| {
        push(&["pmessage", pattern, channel, payload], false)
    };
    let ks = "__keyspace@0__:*";
    let want = [
        pmessage("__keyspace@0__:k", "set", ks),
        pmessage("__keyspace@0__:k", "append", ks),
        pmessage("__keyspace@0__:n", "incrby", ks),
        pmessage("__keyspace@0__:k", "del", ks),
        pmessage("__keyevent@0__:del", "k", "__keyevent@0__:del"),
        pmessage("__keyspace@0__:k2", "set", ks),
        pmessage("__keyspace@0__:k2", "expire", ks),
    ]
    .concat();
    for sub in &mut subscribers {
        sub.expect(&want);
        sub.quiet(Duration::from_millis(100));
        sub.call(
            "PUNSUBSCRIBE\r\n",
            &[
                confirm("punsubscribe", "__keyevent@0__:del", 1, false),
                confirm("punsubscribe", "__keyspace@0__:*", 0, false),
            ]
            .concat(),
        );
        // Out of subscribed mode, commands work again.
        sub.call("GET n\r\n", "$1\r\n5\r\n");
    }
    // The flag letters are checked as Redis does.
    writer.call(
        "CONFIG SET notify-keyspace-events KQ\r\n",
        "-ERR Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n",
    );
}

#[test]
fn publish_reaches_channel_and_pattern_subscribers_as_resp3_pushes() {
    let cluster = TestCluster::start(1, |_| {});
    let addr = cluster.client_addr(0);
    let mut sub = Raw::connect(addr);
    sub.send("HELLO 3\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let mut chunk = [0u8; 4096];
    let _ = sub.stream.read(&mut chunk); // The HELLO map.
    sub.call("SUBSCRIBE news\r\n", &confirm("subscribe", "news", 1, true));
    sub.call("PSUBSCRIBE n*\r\n", &confirm("psubscribe", "n*", 2, true));
    // RESP3 takes any command while subscribed.
    sub.call("GET nokey\r\n", "_\r\n");
    sub.call(
        "CONFIG GET notify-keyspace-events\r\n",
        "%1\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n",
    );
    let mut publisher = Raw::connect(addr);
    publisher.call("PUBLISH news hello\r\n", ":2\r\n");
    publisher.call("PUBLISH other hello\r\n", ":0\r\n");
    sub.expect(
        &[
            push(&["message", "news", "hello"], true),
            push(&["pmessage", "n*", "news", "hello"], true),
        ]
        .concat(),
    );
    sub.quiet(Duration::from_millis(100));
    drop(sub);
    // A closed connection's subscriptions no longer count.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut probe = Raw::connect(addr);
        probe.send("PUBLISH news again\r\n");
        let mut reply = [0u8; 16];
        std::thread::sleep(Duration::from_millis(50));
        let n = probe.stream.read(&mut reply).unwrap_or(0);
        if &reply[..n] == b":0\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "still counted");
    }
}

#[test]
fn the_change_feed_resumes_at_any_node_and_refuses_a_compacted_revision() {
    let cluster = TestCluster::start(3, |c| c.change_window_max = 4);
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    let mut writer = Raw::connect(cluster.client_addr(leader));
    writer.call("SET a 1\r\n", "+OK\r\n");
    writer.call("MSET b 2 c 3\r\n", "+OK\r\n");
    writer.call("DEL a\r\n", ":1\r\n");
    let entry = |id: &str, key: &str, event: &str, value: Option<&str>| {
        let mut fields = vec![bulk("key"), bulk(key), bulk("event"), bulk(event)];
        if let Some(v) = value {
            fields.push(bulk("value"));
            fields.push(bulk(v));
        }
        format!("*2\r\n{}*{}\r\n{}", bulk(id), fields.len(), fields.concat())
    };
    let stream = |entries: &[String]| {
        format!(
            "*1\r\n*2\r\n{}*{}\r\n{}",
            bulk("__changes__"),
            entries.len(),
            entries.concat()
        )
    };
    let mut reader = Raw::connect(cluster.client_addr(leader));
    // COUNT 2 stops after whole commands: the MSET's two changes come together.
    reader.call(
        "XREAD COUNT 2 STREAMS __changes__ 0\r\n",
        &stream(&[
            entry("1-0", "a", "set", Some("1")),
            entry("2-0", "b", "set", Some("2")),
            entry("2-1", "c", "set", Some("3")),
        ]),
    );
    // Resume at a follower from the last id seen: nothing missed, nothing repeated.
    let follower = (leader + 1) % 3;
    let mut other = Raw::connect(cluster.client_addr(follower));
    other.call(
        "XREAD BLOCK 2000 STREAMS __changes__ 2-1\r\n",
        &stream(&[entry("3-0", "a", "del", None)]),
    );
    // Nothing new: BLOCK times out with nil; a blocked read wakes for the next change.
    other.call("XREAD BLOCK 100 STREAMS __changes__ 3\r\n", "$-1\r\n");
    other.send("XREAD BLOCK 0 STREAMS __changes__ $\r\n");
    std::thread::sleep(Duration::from_millis(100));
    writer.call("INCR n\r\n", ":1\r\n");
    other.expect(&stream(&[entry("4-0", "n", "incrby", Some("1"))]));
    // The window keeps at most 4 changes, whole commands: revisions 1 and 2 (3 changes) went.
    writer.call("SET d 4\r\n", "+OK\r\n");
    other.call("XREAD COUNT 10 STREAMS __changes__ 5\r\n", "$-1\r\n");
    reader.call(
        "XREAD STREAMS __changes__ 0\r\n",
        "-ERR required revision has been compacted: the oldest revision kept is 2; resume with XREAD STREAMS __changes__ 2\r\n",
    );
    reader.call(
        "XREAD STREAMS __changes__ 2\r\n",
        &stream(&[
            entry("3-0", "a", "del", None),
            entry("4-0", "n", "incrby", Some("1")),
            entry("5-0", "d", "set", Some("4")),
        ]),
    );
    reader.call(
        "XREAD STREAMS mystream 0\r\n",
        "-ERR the only stream is __changes__ (the change feed); quorate keeps no Redis streams\r\n",
    );
}

#[test]
fn quorum_refuses_the_feed_and_keyspace_notifications_by_name() {
    let cluster = TestCluster::start_protocol("quorum", 3, |_| {});
    let mut conn = Raw::connect(cluster.client_addr(0));
    conn.send("XREAD STREAMS __changes__ 0\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let mut chunk = [0u8; 4096];
    let n = conn.stream.read(&mut chunk).unwrap();
    let reply = String::from_utf8_lossy(&chunk[..n]).into_owned();
    assert!(
        reply.starts_with(
            "-ERR no change feed on this node: quorum applies writes in no single order"
        ),
        "{reply}"
    );
    conn.send("CONFIG SET notify-keyspace-events KEA\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let n = conn.stream.read(&mut chunk).unwrap();
    let reply = String::from_utf8_lossy(&chunk[..n]).into_owned();
    assert!(
        reply.starts_with("-ERR keyspace notifications are off on this node: quorum"),
        "{reply}"
    );
}
