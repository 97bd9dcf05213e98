//! concurrency (I/O-bound): a delayed-response server and a client with C persistent
//! connections in one process, over loopback TCP, on tokio.
//!
//! Protocol (the same in every implementation): the client sends a request `k\n` (k in decimal)
//! and the server, after a fixed delay, answers `2k+1\n`. One iteration sends R requests
//! numbered 0..R over C connections opened before the clocks; connection j sends k = j, j+C,
//! j+2C, ... one after another, so at most C requests are in flight. The checksum is the sum of
//! the answers, Σ(2k+1) = R².
//!
//! The delay uses tokio's timer, which rounds up to whole milliseconds: a 1 ms delay takes
//! about 2 ms (tokio-rs/tokio#6866), where Python's `time.sleep`/`asyncio.sleep` take about
//! 1.1 ms. That is part of what a tokio user gets; `--delay-us 0` measures the pure echo.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

pub const TASK: &str = "concurrency";

/// Requests per iteration for C connections: at least 1000, and at least 4 per connection.
pub fn requests(connections: u64) -> u64 {
    (4 * connections).max(1000)
}

/// The expected checksum: Σ_{k<R} (2k+1) = R².
pub fn expected_sum(requests: u64) -> u64 {
    requests * requests
}

/// The server's answer to request `k`.
pub fn answer(k: u64) -> u64 {
    2 * k + 1
}

/// Binds 127.0.0.1:`port` (0 = any free port) with a backlog that holds every connection the
/// client opens at once.
pub fn listen(port: u16, backlog: u32) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(backlog.max(1024))
}

/// Accepts connections forever; each is served by its own task.
pub async fn serve(listener: TcpListener, delay: Duration) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, delay));
            }
            // A failed accept (e.g. out of file descriptors) surfaces as a client error.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn serve_connection(stream: TcpStream, delay: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let k: u64 = line
            .trim_end()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad request"))?;
        // tokio's timer has millisecond resolution and rounds a sleep up to the next tick
        // (even a zero one), so the delay is skipped rather than slept when it is zero.
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        conn.write_all(format!("{}\n", answer(k)).as_bytes())
            .await?;
    }
}

/// One client connection (buffered reads; writes go straight to the socket).
pub type Conn = BufReader<TcpStream>;

pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Connection `j` of `c`: sends requests j, j+c, ... below `r` one after another; returns the
/// connection and the sum of the answers.
pub async fn run_connection(mut conn: Conn, j: u64, c: u64, r: u64) -> io::Result<(Conn, u64)> {
    let mut sum = 0u64;
    let mut line = String::new();
    let mut k = j;
    while k < r {
        conn.write_all(format!("{k}\n").as_bytes()).await?;
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        sum += line
            .trim_end()
            .parse::<u64>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad answer"))?;
        k += c;
    }
    Ok((conn, sum))
}

/// One iteration: all connections run concurrently (each in its own task); the connections
/// come back in `conns` for the next iteration. Returns the sum of all answers.
pub async fn iteration(conns: &mut Vec<Conn>, r: u64) -> io::Result<u64> {
    let c = conns.len() as u64;
    let handles: Vec<_> = conns
        .drain(..)
        .enumerate()
        .map(|(j, conn)| tokio::spawn(run_connection(conn, j as u64, c, r)))
        .collect();
    let mut sum = 0u64;
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(Ok((conn, s))) => {
                conns.push(conn);
                sum += s;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(io::Error::other(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn sizes() {
        assert_eq!(requests(10), 1000);
        assert_eq!(requests(1000), 4000);
        assert_eq!(
            expected_sum(requests(10)),
            (0..1000).map(answer).sum::<u64>()
        );
    }

    #[test]
    fn round_trip_over_loopback() {
        let rt = runtime();
        rt.block_on(async {
            let listener = listen(0, 16).unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(serve(listener, Duration::from_micros(100)));
            let mut conns = Vec::new();
            for _ in 0..7 {
                conns.push(connect(addr).await.unwrap());
            }
            for _ in 0..2 {
                assert_eq!(iteration(&mut conns, 50).await.unwrap(), 50 * 50);
                assert_eq!(conns.len(), 7);
            }
        });
    }

    #[test]
    fn port_in_use_is_an_error() {
        let rt = runtime();
        rt.block_on(async {
            let first = listen(0, 16).unwrap();
            let port = first.local_addr().unwrap().port();
            assert!(listen(port, 16).is_err());
        });
    }
}
