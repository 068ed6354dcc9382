//! The webhook's HTTPS server on loopback against idle, slow and large clients: handshakes,
//! headers and bodies have time limits, connections are limited (the oldest makes room for a
//! new one), a trickled body holds only what it sent, and an UPDATE review of an object as
//! large as the API server allows (object and old object, 3 MiB each) is admitted.

mod webhook_server;

use std::time::{Duration, Instant};

use frr_composer::webhook::server::Limits;
use tokio::io::AsyncWriteExt;
use webhook_server::{big_config, closed_within, head, healthz, post, response, start, start_unsynced, update_review};

fn short() -> Limits {
    Limits {
        handshake: Duration::from_millis(500),
        headers: Duration::from_millis(500),
        body: Duration::from_millis(800),
        max_connections: 8,
        ..Limits::default()
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = start(short()).await;
    // no TLS handshake at all
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_within(&mut tcp, Duration::from_secs(3)).await, "a connection without a handshake stays open");
    // a handshake, then no request
    let mut c = s.connect().await.unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(3)).await, "an idle TLS connection stays open");
    // half a request head
    let mut c = s.connect().await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(3)).await, "a half-sent head keeps the connection");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_is_refused_in_time() {
    let s = start(short()).await;
    let mut c = s.connect().await.unwrap();
    let len = 1_900_000;
    c.write_all(head(len).as_bytes()).await.unwrap();
    c.write_all(&vec![b' '; len / 2]).await.unwrap();
    let started = Instant::now();
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), response(&mut c)).await.expect("no answer to a stalled body");
    assert_eq!(status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn at_the_connection_limit_the_oldest_idle_connection_makes_room() {
    // long time limits: without making room, the new connections would wait 30 s
    let s = start(Limits { handshake: Duration::from_secs(30), headers: Duration::from_secs(30), max_connections: 4, ..short() }).await;
    // two TCP connections that never start a handshake, two idle TLS connections
    let mut tcp = Vec::new();
    for _ in 0..2 {
        tcp.push(tokio::net::TcpStream::connect(s.addr).await.unwrap());
    }
    let mut tls = Vec::new();
    for _ in 0..2 {
        tls.push(s.connect().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // a review and a probe are served at once, each in the place of the oldest
    let started = Instant::now();
    let mut c = tokio::time::timeout(Duration::from_secs(2), s.connect()).await.expect("a new connection waited").unwrap();
    let body = update_review(&big_config("small", 1), &big_config("small", 1));
    assert_eq!(post(&mut c, &body).await.0, 200);
    assert_eq!(tokio::time::timeout(Duration::from_secs(2), healthz(&s)).await.expect("the probe waited"), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // the oldest went first: the two that never shook hands
    for t in &mut tcp {
        assert!(closed_within(t, Duration::from_secs(1)).await, "the oldest connection stayed open");
    }
    // a connection in the middle of a request is not cut: it gets its answer
    let mut busy = s.connect().await.unwrap();
    let len = body.len();
    busy.write_all(head(len).as_bytes()).await.unwrap();
    busy.write_all(&body[..len / 2]).await.unwrap();
    for _ in 0..4 {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.connect()).await;
    }
    busy.write_all(&body[len / 2..]).await.unwrap();
    assert_eq!(response(&mut busy).await.0, 200);
}

#[tokio::test]
async fn a_trickled_large_body_does_not_hold_up_other_reviews() {
    let s = start(Limits::default()).await;
    // announced as 8 MiB (the whole memory budget at 6 bytes a byte), then 1 KiB and nothing
    let mut slow = s.connect().await.unwrap();
    slow.write_all(head(8 << 20).as_bytes()).await.unwrap();
    slow.write_all(&[b' '; 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let body = update_review(&big_config("small", 1), &big_config("small", 1));
    let mut c = s.connect().await.unwrap();
    assert_eq!(post(&mut c, &body).await.0, 200);
    // it waited for the slow client's 10 s before
    assert!(started.elapsed() < Duration::from_secs(2), "a normal review took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_update_of_a_large_object_is_admitted() {
    let s = start(Limits::default()).await;
    // about 3 MiB per object (the API server's limit), twice in an UPDATE's review
    let new = big_config("large", 195_000);
    let mut old = new.clone();
    old["spec"]["bgp"]["routers"][0]["prefixes"].as_array_mut().unwrap().pop();
    let body = update_review(&new, &old);
    assert!(body.len() > 6_000_000 && body.len() < 8 << 20, "{} bytes", body.len());
    let mut c = s.connect().await.unwrap();
    let (status, text) = post(&mut c, &body).await;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"]["allowed"], true, "{text}");
    // beyond the limit: refused at once, from the announced length
    let mut c = s.connect().await.unwrap();
    c.write_all(head(9 << 20).as_bytes()).await.unwrap();
    assert_eq!(response(&mut c).await.0, 413);
}

/// Before both lists are complete a review fails (503: the API server applies the webhook's
/// failurePolicy) instead of deciding on part of the cluster; once synced it is answered.
#[tokio::test]
async fn reviews_wait_for_complete_lists() {
    let s = start_unsynced(Limits::default()).await;
    assert_eq!(healthz(&s).await, 503);
    let body = update_review(&big_config("small", 1), &big_config("small", 1));
    let mut c = s.connect().await.unwrap();
    let (status, text) = post(&mut c, &body).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("not yet listed"), "{text}");
    let s = start(Limits::default()).await;
    assert_eq!(healthz(&s).await, 200);
    let mut c = s.connect().await.unwrap();
    assert_eq!(post(&mut c, &body).await.0, 200);
}
