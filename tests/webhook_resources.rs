//! The webhook server under resource pressure, each case alone in this process (they measure
//! the process): out of file descriptors (EMFILE), accept backs off instead of spinning and
//! serves again afterwards; 60 clients stalling halfway through a 1.9 MB body do not grow
//! the server by their bodies; a body of 8 MiB of dense JSON is refused before it is parsed.

mod webhook_server;

use std::time::Duration;

use frr_composer::webhook::server::Limits;
use tokio::io::AsyncWriteExt;
use webhook_server::{big_config, head, post, start, update_review};

static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap()
}

#[test]
fn accept_backs_off_when_out_of_file_descriptors() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let s = start(Limits::default()).await;
        // a small descriptor limit for this process, so that using it up is quick
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: plain system calls on a local struct
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            lim.rlim_cur = lim.rlim_cur.min(1024);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        // use up every file descriptor but one
        let mut hog = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(24), "{e}");
                    break;
                }
            }
            assert!(hog.len() < 1_000_000, "no file descriptor limit");
        }
        hog.pop();
        // a client connection (the last descriptor) that the server then cannot accept
        let _waiting = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let failures = s.stats.accept_errors.load(std::sync::atomic::Ordering::Relaxed);
        drop(hog);
        // a retry at once would fail millions of times in 2 s; a backoff up to 1 s, a dozen
        assert!((1..=20).contains(&failures), "{failures} accept failures in 2 s");
        // and good requests are served again
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut c = tokio::time::timeout(Duration::from_secs(5), s.connect()).await.expect("served after EMFILE").unwrap();
        let body = update_review(&big_config("small", 1), &big_config("small", 1));
        assert_eq!(post(&mut c, &body).await.0, 200);
    });
}

#[test]
fn stalled_bodies_do_not_grow_the_server() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // a budget of 16 MiB: bodies arriving take twice their bytes of it
        let budget_mib: usize = 16;
        let s = start(Limits { body: Duration::from_secs(3), memory: budget_mib << 20, ..Limits::default() }).await;
        let before = rss_kib();
        let len = 1_900_000;
        let half = vec![b' '; len / 2];
        let mut clients = Vec::new();
        for _ in 0..60 {
            let mut c = s.connect().await.unwrap();
            c.write_all(head(len).as_bytes()).await.unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(200), c.write_all(&half)).await;
            clients.push(c);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        // 60 half bodies are 57 MB; read all at once they grew the server by more than that.
        // Within the budget the server holds 8 MiB of them (plus its buffers' growth).
        assert!((grown_mib as usize) < budget_mib + 8, "the server grew by {grown_mib} MiB");
        eprintln!("60 stalled 1.9 MB bodies: the process grew by {grown_mib} MiB");
    });
}

#[test]
fn dense_json_is_refused_before_it_is_parsed() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let s = start(Limits::default()).await;
        // an UPDATE review whose object carries 8 MiB of `0,` in an unknown field: parsed, it
        // took the server to 281-295 MiB against a 128 MiB pod limit
        let mut obj = big_config("dense", 10);
        let zeros = vec![0u8; (8 << 20) / 2 - 4096];
        obj["spec"]["unknown"] = serde_json::json!(zeros);
        let body = update_review(&obj, &big_config("dense", 10));
        assert!(body.len() <= Limits::default().max_body, "{}", body.len());
        let before = rss_kib();
        let mut c = s.connect().await.unwrap();
        let (status, text) = post(&mut c, &body).await;
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("JSON values") && text.contains("memory budget"), "{text}");
        // the body itself (8 MiB) is read; nothing is parsed from it
        assert!(grown_mib < 40, "the server grew by {grown_mib} MiB");
        eprintln!("8 MiB of dense JSON refused: {text}; the process grew by {grown_mib} MiB");
        // a real review of the same size still passes (a 3 MB object and its old version)
        let big = big_config("big", 110_000);
        let body = update_review(&big, &big);
        let mut c = s.connect().await.unwrap();
        let (status, text) = post(&mut c, &body).await;
        assert_eq!(status, 200, "{} bytes: {text}", body.len());
    });
}
