//! Stopping the HTTP server while clients hold watches open: it must end them and stop, not
//! wait for clients that never hang up (`tusk up` and the operator used to wait on each other
//! forever on Ctrl-C).

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tusk_fake_apiserver::{ApiServer, Config, SystemClock};

/// Sends a watch request and reads until the response head is in.
async fn open_watch(addr: std::net::SocketAddr) -> (TcpStream, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        b"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        head.extend_from_slice(&buf[..n]);
    }
    (conn, String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test]
async fn shutdown_ends_open_watches_and_returns() {
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    let handle = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = handle.addr;
    let (mut watch, head) = open_watch(addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(server.with_store(|s| s.watcher_count()), 1);

    // Generous bound: the server gives requests in flight SHUTDOWN_GRACE, then cuts them.
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .expect("shutdown returned while a watch was open");

    // The watch's stream ended: reading reaches the end instead of blocking.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), watch.read_to_end(&mut rest))
        .await
        .expect("the open watch was ended")
        .ok();
    assert_eq!(server.with_store(|s| s.watcher_count()), 0);
    // Nobody listens any more: a late client is refused instead of queued forever.
    assert!(TcpStream::connect(addr).await.is_err());
}
