//! The handshake refuses strangers, frames are checked, and messages arrive in order.

use super::*;
use std::sync::atomic::Ordering;

fn context(me: u64, cluster: &str, members: &[u64]) -> Arc<PeerContext> {
    Arc::new(PeerContext {
        me: NodeId(me),
        cluster_id: cluster.into(),
        protocol: "raft",
        members: Mutex::new(members.iter().map(|m| NodeId(*m)).collect()),
        client_addr: ([127, 0, 0, 1], 6000 + me as u16).into(),
        frame_max: 1 << 20,
        metrics: Metrics::new(),
        client_addrs: Mutex::new(BTreeMap::new()),
        inbound: Inbound::new(1 << 20),
        tls: crate::tls::Tls::none(),
    })
}

/// A listening node 1 of cluster "home" (members 1, 2, 3); returns its address, context and
/// the inbox its accepted messages arrive in.
async fn listening_node() -> (
    SocketAddr,
    Arc<PeerContext>,
    mpsc::Receiver<(NodeId, PeerMsg<u64>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = context(1, "home", &[1, 2, 3]);
    let (inbox, rx) = mpsc::channel(1024);
    tokio::spawn(accept_loop::<u64>(listener, ctx.clone(), inbox));
    (addr, ctx, rx)
}

#[tokio::test]
async fn a_member_of_the_cluster_is_welcomed_and_its_messages_arrive_in_order() {
    let (addr, acceptor, mut rx) = listening_node().await;
    let dialer = context(2, "home", &[1, 2, 3]);
    let sender = spawn_outbound::<u64>(dialer.clone(), NodeId(1), addr, 4096);
    for n in 0..1000u64 {
        sender.send(PeerMsg::Protocol(n), &dialer.metrics);
    }
    for n in 0..1000u64 {
        let (from, msg) = rx.recv().await.unwrap();
        assert_eq!(from, NodeId(2));
        assert!(
            matches!(msg, PeerMsg::Protocol(m) if m == n),
            "FIFO broken at {n}"
        );
    }
    // The acceptor learned the dialer's client address from the handshake.
    assert_eq!(acceptor.client_addr_of(NodeId(2)), Some(dialer.client_addr));
}

#[tokio::test]
async fn a_peer_from_another_cluster_is_refused_with_the_reason() {
    let (addr, acceptor, mut rx) = listening_node().await;
    let stranger = context(2, "elsewhere", &[1, 2, 3]);
    let error = dial(&stranger, NodeId(1), addr).await.unwrap_err();
    assert!(error.contains("refused by peer n1"), "{error}");
    assert!(
        error.contains("belongs to cluster \"elsewhere\", this node to cluster \"home\""),
        "{error}"
    );
    assert_eq!(
        acceptor
            .metrics
            .peer_handshakes_refused
            .load(Ordering::Relaxed),
        1
    );
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn unknown_nodes_and_misdirected_dials_are_refused() {
    let (addr, _acceptor, _rx) = listening_node().await;
    let outsider = context(9, "home", &[1, 2, 3, 9]);
    let error = dial(&outsider, NodeId(1), addr).await.unwrap_err();
    assert!(
        error.contains("claims to be n9, which is not a member (members: n1, n2, n3)"),
        "{error}"
    );
    let confused = context(2, "home", &[1, 2, 3]);
    let error = dial(&confused, NodeId(3), addr).await.unwrap_err();
    assert!(error.contains("dialed n3 but reached n1"), "{error}");
}

#[tokio::test]
async fn garbage_on_the_peer_port_is_refused_and_the_listener_survives() {
    let (addr, acceptor, mut rx) = listening_node().await;
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0xff; 64][..],
        &[4, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4][..],
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut rest)).await;
    }
    assert!(
        acceptor
            .metrics
            .peer_handshakes_refused
            .load(Ordering::Relaxed)
            >= 2
    );
    let member = context(3, "home", &[1, 2, 3]);
    let sender = spawn_outbound::<u64>(member.clone(), NodeId(1), addr, 16);
    sender.send(PeerMsg::Protocol(7), &member.metrics);
    let (from, _) = rx.recv().await.unwrap();
    assert_eq!(from, NodeId(3));
}

#[tokio::test]
async fn a_frame_with_a_bad_checksum_or_length_is_rejected() {
    let mut wire = Vec::new();
    write_frame_into(&mut wire, b"payload");
    let mut good = &wire[..];
    assert_eq!(read_frame(&mut good, 1024).await.unwrap(), b"payload");
    let mut flipped = wire.clone();
    flipped[FRAME_HEADER_LEN + 2] ^= 1;
    assert!(matches!(
        read_frame(&mut &flipped[..], 1024).await,
        Err(FrameError::Checksum)
    ));
    assert!(matches!(
        read_frame(&mut &wire[..], 3).await,
        Err(FrameError::TooLarge(7, 3))
    ));
}

/// A raw connection that completed the handshake as member `from` of "home".
async fn handshaken(addr: SocketAddr, from: u64) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let hello = context(from, "home", &[1, 2, 3]).hello(NodeId(1));
    let mut buf = Vec::new();
    write_frame_into(&mut buf, &postcard::to_allocvec(&hello).unwrap());
    stream.write_all(&buf).await.unwrap();
    let answer = read_frame(&mut stream, 1024).await.unwrap();
    let answer: HelloAnswer = postcard::from_bytes(&answer).unwrap();
    assert!(matches!(answer, HelloAnswer::Welcome), "{answer:?}");
    stream
}

#[tokio::test]
async fn a_handshake_naming_this_node_itself_says_so() {
    let (addr, _acceptor, _rx) = listening_node().await;
    let twin = context(1, "home", &[1, 2, 3]);
    let error = dial(&twin, NodeId(1), addr).await.unwrap_err();
    assert!(
        error.contains("claims to be n1, this node itself"),
        "{error}"
    );
}

#[tokio::test]
async fn a_member_has_one_inbound_connection_and_a_new_one_replaces_the_old() {
    let (addr, acceptor, _rx) = listening_node().await;
    let mut first = handshaken(addr, 2).await;
    let _second = handshaken(addr, 2).await;
    // The first is closed by the node: reading it ends.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the replaced connection stays open");
    let _third = handshaken(addr, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(acceptor.inbound.connections(), 2, "one per member");
    let replaced = &acceptor.metrics.peer_connections_replaced;
    assert_eq!(replaced.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn frames_announced_large_hold_only_what_arrived_and_share_one_byte_budget() {
    // frame_max is 1 MiB: two connections announcing 1 MiB each cannot both read at once.
    let (addr, acceptor, mut rx) = listening_node().await;
    let mut a = handshaken(addr, 2).await;
    let mut b = handshaken(addr, 3).await;
    let payload = postcard::to_allocvec(&PeerMsg::<u64>::Protocol(5)).unwrap();
    let mut big = Vec::new();
    write_frame_into(&mut big, &vec![0u8; 1 << 20]);
    // `a` announces a large frame and sends half of it: it holds the budget.
    a.write_all(&big[..big.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(acceptor.inbound.bytes.available_permits(), 0);
    // `b`'s small frame waits for the budget...
    let mut small = Vec::new();
    write_frame_into(&mut small, &payload);
    b.write_all(&small).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "read past the budget"
    );
    // ... until `a`'s frame is complete (zeros decode as a message: `Protocol(0)`).
    a.write_all(&big[big.len() / 2..]).await.unwrap();
    for expected in [2, 3] {
        let (from, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, NodeId(expected));
    }
    assert_eq!(acceptor.inbound.bytes.available_permits(), 1 << 20);
}

#[tokio::test]
async fn handshakes_in_progress_are_bounded() {
    let (addr, acceptor, _rx) = listening_node().await;
    let mut idle = Vec::new();
    for _ in 0..HANDSHAKES_MAX + 4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = &acceptor.metrics.peer_connections_refused;
    assert_eq!(refused.load(Ordering::Relaxed), 4);
}
