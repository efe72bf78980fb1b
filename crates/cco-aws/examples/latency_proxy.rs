//! Benchmark helper: a TCP proxy that adds a fixed round-trip latency in front of a local emulator, so
//! that benchmarks see what real AWS endpoints cost (tens of milliseconds per call) instead of
//! loopback's microseconds.
//!
//! Each new connection waits one delay before it is connected (the handshake's round trip). On a
//! connection, the first response bytes after a request are released no earlier than `delay` after
//! the request's first bytes were received: every HTTP request/response exchange costs at least one
//! delay, however the bytes are split into reads, and requests on different connections overlap as
//! they would over a real network.
//!
//! Usage: latency_proxy <listen port> <upstream host:port> <delay ms>
//! Prints `listening=<port>` once it accepts connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> R<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, upstream, delay_ms] = args.as_slice() else {
        return Err("usage: latency_proxy <listen port> <upstream host:port> <delay ms>".into());
    };
    let delay = Duration::from_millis(delay_ms.parse()?);
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    println!("listening={}", listener.local_addr()?.port());
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(client, &upstream, delay).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn relay(client: TcpStream, upstream: &str, delay: Duration) -> R<()> {
    tokio::time::sleep(delay).await;
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // When the request now waiting for its response started; `None` once its response has begun.
    let pending: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let requests = {
        let pending = pending.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = cr.read(&mut buf).await?;
                if n == 0 {
                    sw.shutdown().await?;
                    return Ok::<_, std::io::Error>(());
                }
                if let Ok(mut p) = pending.lock() {
                    p.get_or_insert_with(Instant::now);
                }
                sw.write_all(&buf[..n]).await?;
            }
        }
    };
    let responses = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                cw.shutdown().await?;
                return Ok::<_, std::io::Error>(());
            }
            let started = pending.lock().ok().and_then(|mut p| p.take());
            if let Some(t) = started {
                tokio::time::sleep_until(t + delay).await;
            }
            cw.write_all(&buf[..n]).await?;
        }
    };
    let (a, b) = tokio::join!(requests, responses);
    a?;
    b?;
    Ok(())
}
