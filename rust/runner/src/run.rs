//! Running one process and measuring it.
//!
//! Timed region: `Instant::now()` immediately before `Command::spawn` and immediately after
//! `wait4` returns. Everything that can be prepared before the child exists (pipes, /dev/null for
//! stdin, the environment pad) is prepared before the first timestamp, and everything that can
//! wait (closing our copies of the pipes, collecting the rest of the output) waits until after
//! the second one.
//!
//! The child is reaped with `libc::wait4` on its pid, which returns that child's own `rusage`
//! (never `RUSAGE_CHILDREN`). `std::process::Child::wait` is never called.
//!
//! Two ways to wait, with the same results:
//! - [`Method::Poll`] (used whenever the kernel has `pidfd_open`, Linux >= 5.3): one thread.
//!   After the spawn the runner `ppoll`s the child's pidfd and both output pipes; pipe data is
//!   drained as it comes, the deadline is the poll timeout (then SIGKILL), and when the pidfd
//!   turns readable (the child has exited) `wait4` reaps it at once. Since the runner still holds
//!   the pipes' write ends until after the second timestamp, the child's exit wakes exactly one
//!   thread, as with hyperfine: on a one-core cpuset, extra threads woken by the child's exit
//!   measurably delayed the runner's own wake-up (about +10 % on `true`).
//! - [`Method::Threads`] (fallback without pidfd, e.g. an old seccomp profile): the main thread
//!   blocks in `wait4` while two reader threads drain the pipes and a watchdog thread sends
//!   SIGKILL at the deadline. All three are started before the first timestamp.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::args::{settled, Config};

/// Bytes of stderr kept (the last ones).
pub const STDERR_TAIL: usize = 4096;
/// Bytes of stdout kept from its end when it exceeds the limit (a program's last line, its
/// result, after millions of lines of output).
pub const STDOUT_TAIL: usize = 4096;
/// Environment variable that carries the random-length pad.
pub const PAD_VAR: &str = "RPB_PAD";
/// How long to wait, after the child is reaped, for its pipes to reach end of file. Only matters
/// when a grandchild keeps them open; the output captured so far is reported then.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const READ_BUF: usize = 64 * 1024;
const THREAD_STACK: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub wall_ns: u64,
    pub user_ns: u64,
    pub sys_ns: u64,
    pub maxrss_kb: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// The first `stdout_limit` bytes of stdout.
    pub stdout: Vec<u8>,
    /// All bytes the child wrote to stdout.
    pub stdout_bytes: u64,
    /// The last `STDOUT_TAIL` bytes of stdout when it exceeded `stdout_limit`, else empty.
    pub stdout_tail: Vec<u8>,
    /// The last `STDERR_TAIL` bytes of stderr.
    pub stderr_tail: Vec<u8>,
}

#[derive(Debug)]
pub enum RunError {
    /// The command could not be started (not found, not executable, no pipes, ...).
    Spawn(io::Error),
    /// Something failed after the child started (wait4). Should not happen.
    Internal(String),
}

/// Keeps the head or the tail of a byte stream and counts all of it.
#[derive(Debug, Default)]
struct Capture {
    head_limit: usize,
    tail_limit: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
}

impl Capture {
    fn tail(limit: usize) -> Self {
        Capture {
            tail_limit: limit,
            ..Default::default()
        }
    }

    /// Stdout: the head up to the limit, and the tail in case it is exceeded.
    fn stdout(limit: usize) -> Self {
        Capture {
            head_limit: limit,
            tail_limit: STDOUT_TAIL,
            ..Default::default()
        }
    }

    /// (head, all bytes, tail), the tail empty when the head holds everything.
    fn into_stdout(self) -> (Vec<u8>, u64, Vec<u8>) {
        let tail = if self.total > self.head.len() as u64 {
            self.tail
        } else {
            Vec::new()
        };
        (self.head, self.total, tail)
    }

    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < self.head_limit {
            let take = (self.head_limit - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if self.tail_limit > 0 {
            if data.len() >= self.tail_limit {
                self.tail.clear();
                self.tail
                    .extend_from_slice(&data[data.len() - self.tail_limit..]);
            } else {
                self.tail.extend_from_slice(data);
                if self.tail.len() > self.tail_limit {
                    let cut = self.tail.len() - self.tail_limit;
                    self.tail.drain(..cut);
                }
            }
        }
    }
}

fn spawn_reader(
    mut pipe: io::PipeReader,
    cap: Arc<Mutex<Capture>>,
    done: mpsc::Sender<()>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("runner-reader".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => cap
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        })
        .map(|_| ())
}

/// Kills the child if it is still running after `timeout`. The pid and a pidfd are published
/// through atomics right after the spawn, so the watchdog never has to be woken up inside the
/// timed region. Sending SIGKILL through the pidfd cannot hit a recycled pid.
struct Watchdog {
    pid: Arc<AtomicI32>,
    pidfd: Arc<AtomicI32>,
    done: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    handle: thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(timeout: Duration) -> io::Result<Watchdog> {
        let pid = Arc::new(AtomicI32::new(0));
        let pidfd = Arc::new(AtomicI32::new(-1));
        let fired = Arc::new(AtomicBool::new(false));
        let (done, done_rx) = mpsc::channel::<()>();
        let (pid2, pidfd2, fired2) = (pid.clone(), pidfd.clone(), fired.clone());
        let handle = thread::Builder::new()
            .name("runner-watchdog".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let mut wait = timeout;
                loop {
                    match done_rx.recv_timeout(wait) {
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                    let p = pid2.load(Ordering::Acquire);
                    if p <= 0 {
                        // Not spawned yet (or spawn failed): look again shortly.
                        wait = Duration::from_millis(1);
                        continue;
                    }
                    let fd = pidfd2.load(Ordering::Acquire);
                    fired2.store(true, Ordering::Release);
                    // SAFETY: plain syscalls on integers owned by the run; the pidfd stays open
                    // until this thread has been joined.
                    unsafe {
                        if fd >= 0 {
                            libc::syscall(
                                libc::SYS_pidfd_send_signal,
                                fd,
                                libc::SIGKILL,
                                std::ptr::null::<libc::siginfo_t>(),
                                0,
                            );
                        } else {
                            libc::kill(p, libc::SIGKILL);
                        }
                    }
                    return;
                }
            })?;
        Ok(Watchdog {
            pid,
            pidfd,
            done,
            fired,
            handle,
        })
    }

    /// Stops the watchdog; returns whether it killed the child.
    fn finish(self) -> bool {
        let _ = self.done.send(());
        let _ = self.handle.join();
        self.fired.load(Ordering::Acquire)
    }
}

fn timeval_ns(tv: libc::timeval) -> u64 {
    (tv.tv_sec as u64) * 1_000_000_000 + (tv.tv_usec as u64) * 1_000
}

/// A tiny xorshift64* generator for the environment pad.
pub struct XorShift(u64);

impl XorShift {
    pub fn from_clock() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = t ^ ((std::process::id() as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15;
        XorShift(if seed == 0 { 1 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A pad length in [0, 4096).
    pub fn pad_len(&mut self) -> usize {
        (self.next_u64() >> 52) as usize
    }
}

/// How `run_once_with` waits for the child (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Poll,
    Threads,
}

/// `Poll` if this kernel (and seccomp profile) allows `pidfd_open`, else `Threads`.
pub fn best_method() -> Method {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| match pidfd_open(std::process::id() as libc::pid_t) {
        Ok(_fd) => true,
        Err(_) => false,
    });
    if ok {
        Method::Poll
    } else {
        Method::Threads
    }
}

/// Runs the command once. `pad` is the value of `RPB_PAD`, if any.
pub fn run_once(cfg: &Config, pad: Option<&str>) -> Result<RunResult, RunError> {
    run_once_with(best_method(), cfg, pad)
}

pub fn run_once_with(m: Method, cfg: &Config, pad: Option<&str>) -> Result<RunResult, RunError> {
    match m {
        Method::Poll => run_once_poll(cfg, pad),
        Method::Threads => run_once_threads(cfg, pad),
    }
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

type Pipes = (
    io::PipeReader,
    io::PipeWriter,
    io::PipeReader,
    io::PipeWriter,
);

fn pipes() -> Result<Pipes, RunError> {
    let (out_r, out_w) = io::pipe().map_err(RunError::Spawn)?;
    let (err_r, err_w) = io::pipe().map_err(RunError::Spawn)?;
    Ok((out_r, out_w, err_r, err_w))
}

/// The command, with stdin = /dev/null (opened here, not by `Stdio::null()` inside `spawn`, to
/// keep the open out of the timed region), stdout and stderr = the pipes, and the pad.
fn command(
    cfg: &Config,
    pad: Option<&str>,
    out_w: io::PipeWriter,
    err_w: io::PipeWriter,
) -> Result<Command, RunError> {
    let devnull = std::fs::File::open("/dev/null")
        .map_err(|e| RunError::Spawn(io::Error::new(e.kind(), format!("/dev/null: {e}"))))?;
    let mut cmd = Command::new(&cfg.cmd[0]);
    cmd.args(&cfg.cmd[1..])
        .stdin(Stdio::from(devnull))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    if let Some(p) = pad {
        cmd.env(PAD_VAR, p);
    }
    Ok(cmd)
}

/// `wait4(pid, .., 0, ..)`, retried on EINTR: the child's status and its own rusage.
fn reap(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            return Ok((status, ru));
        }
        let e = io::Error::last_os_error();
        if r == -1 && e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(e);
    }
}

fn kill(pid: libc::pid_t) {
    // SAFETY: plain syscall. Only called before this thread has reaped `pid`, so the pid cannot
    // have been recycled.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn result(
    t0: Instant,
    t1: Instant,
    status: libc::c_int,
    ru: &libc::rusage,
    timed_out: bool,
    stdout: Capture,
    stderr_tail: Vec<u8>,
) -> RunResult {
    let (stdout, stdout_bytes, stdout_tail) = stdout.into_stdout();
    let (exit_code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    RunResult {
        wall_ns: t1.duration_since(t0).as_nanos() as u64,
        user_ns: timeval_ns(ru.ru_utime),
        sys_ns: timeval_ns(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss.max(0) as u64,
        exit_code,
        signal,
        timed_out,
        stdout,
        stdout_bytes,
        stdout_tail,
        stderr_tail,
    }
}

/// One output pipe read by the poll loop.
struct Stream {
    pipe: io::PipeReader,
    open: bool,
    cap: Capture,
}

impl Stream {
    fn pollfd(&self) -> libc::pollfd {
        libc::pollfd {
            // A negative fd is ignored by poll.
            fd: if self.open { self.pipe.as_raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        }
    }

    /// One read after poll said the pipe is ready (so it does not block).
    fn read_some(&mut self, buf: &mut [u8]) {
        match self.pipe.read(buf) {
            Ok(0) => self.open = false,
            Ok(n) => self.cap.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.open = false,
        }
    }
}

/// `ppoll` with a relative timeout (None = forever); Ok(number of ready fds).
fn ppoll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid slice of pollfd; `tsp` is null or points to a local.
    let r = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            tsp,
            std::ptr::null(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Runs the command once, single-threaded, waiting on a pidfd (preferred method).
fn run_once_poll(cfg: &Config, pad: Option<&str>) -> Result<RunResult, RunError> {
    let (out_r, out_w, err_r, err_w) = pipes()?;
    let mut cmd = command(cfg, pad, out_w, err_w)?;
    let mut out = Stream {
        pipe: out_r,
        open: true,
        cap: Capture::stdout(cfg.stdout_limit),
    };
    let mut err = Stream {
        pipe: err_r,
        open: true,
        cap: Capture::tail(STDERR_TAIL),
    };
    let mut buf = vec![0u8; READ_BUF];

    let t0 = Instant::now();
    let child = cmd.spawn().map_err(RunError::Spawn)?;
    let pid = child.id() as libc::pid_t;
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            kill(pid);
            let _ = reap(pid);
            return Err(RunError::Internal(format!("pidfd_open({pid}) failed: {e}")));
        }
    };
    let deadline = t0 + cfg.timeout;
    let mut timed_out = false;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            out.pollfd(),
            err.pollfd(),
        ];
        let timeout = (!timed_out).then(|| deadline.saturating_duration_since(Instant::now()));
        match ppoll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                kill(pid);
                let _ = reap(pid);
                return Err(RunError::Internal(format!("ppoll failed: {e}")));
            }
        }
        if fds[1].revents != 0 {
            out.read_some(&mut buf);
        }
        if fds[2].revents != 0 {
            err.read_some(&mut buf);
        }
        if fds[0].revents != 0 {
            break; // the child has exited
        }
        if !timed_out && Instant::now() >= deadline {
            kill(pid);
            timed_out = true;
        }
    }
    let waited = reap(pid);
    let t1 = Instant::now();

    // Close our copies of the write ends, then collect what is still in the pipes.
    drop(cmd);
    drop(child);
    drop(pidfd);
    let (status, ru) =
        waited.map_err(|e| RunError::Internal(format!("wait4({pid}) failed: {e}")))?;
    let grace = Instant::now() + DRAIN_GRACE;
    while out.open || err.open {
        let mut fds = [out.pollfd(), err.pollfd()];
        let left = grace.saturating_duration_since(Instant::now());
        match ppoll(&mut fds, Some(left)) {
            Ok(0) => break, // a grandchild keeps a pipe open: report what we have
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if fds[0].revents != 0 {
            out.read_some(&mut buf);
        }
        if fds[1].revents != 0 {
            err.read_some(&mut buf);
        }
    }
    Ok(result(
        t0,
        t1,
        status,
        &ru,
        timed_out,
        out.cap,
        err.cap.tail,
    ))
}

/// Runs the command once with reader threads and a watchdog thread (fallback method).
fn run_once_threads(cfg: &Config, pad: Option<&str>) -> Result<RunResult, RunError> {
    let (out_r, out_w, err_r, err_w) = pipes()?;

    let out_cap = Arc::new(Mutex::new(Capture::stdout(cfg.stdout_limit)));
    let err_cap = Arc::new(Mutex::new(Capture::tail(STDERR_TAIL)));
    let (eof_tx, eof_rx) = mpsc::channel::<()>();
    spawn_reader(out_r, out_cap.clone(), eof_tx.clone()).map_err(RunError::Spawn)?;
    spawn_reader(err_r, err_cap.clone(), eof_tx).map_err(RunError::Spawn)?;
    let watchdog = Watchdog::start(cfg.timeout).map_err(RunError::Spawn)?;
    let mut cmd = command(cfg, pad, out_w, err_w)?;

    let t0 = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            watchdog.finish();
            return Err(RunError::Spawn(e));
        }
    };
    let pid = child.id() as libc::pid_t;
    // Where pidfds exist (tests force this method), the watchdog signals through one.
    let pidfd = pidfd_open(pid).ok();
    let raw = pidfd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
    watchdog.pidfd.store(raw, Ordering::Release);
    watchdog.pid.store(pid, Ordering::Release);

    let waited = reap(pid);
    let t1 = Instant::now();

    let timed_out = watchdog.finish();
    drop(pidfd); // only after the watchdog has stopped
                 // Closes our copies of the pipes' write ends, so the readers see end of file.
    drop(cmd);
    drop(child);
    let (status, ru) =
        waited.map_err(|e| RunError::Internal(format!("wait4({pid}) failed: {e}")))?;

    let deadline = Instant::now() + DRAIN_GRACE;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if eof_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let stdout = std::mem::take(&mut *out_cap.lock().unwrap_or_else(|e| e.into_inner()));
    let stderr_tail = std::mem::take(&mut err_cap.lock().unwrap_or_else(|e| e.into_inner()).tail);
    Ok(result(t0, t1, status, &ru, timed_out, stdout, stderr_tail))
}

/// Runs all warm-up and measured runs, writing one JSON line per run to `out` (flushed after
/// each). The warm-up is `cfg.warmup` runs, or, when the config is adaptive, goes on until the
/// settling rule holds for the last `cfg.settle` warm-up runs or the cap is reached; measured
/// runs then say how many warm-up runs there were and whether they settled. Returns the
/// process exit status for the runner.
pub fn run_all<W: io::Write>(cfg: &Config, out: &mut W) -> i32 {
    let mut rng = XorShift::from_clock();
    let pad_buf = "x".repeat(4095);
    let mut walls: Vec<u64> = Vec::new();
    let mut warm: Option<(u64, bool)> = None;
    let mut i: u64 = 0;
    loop {
        if warm.is_none() {
            let n = walls.len() as u32;
            let settled_now =
                cfg.adaptive() && n >= cfg.warmup && settled(&walls, cfg.settle as usize, cfg.band);
            if settled_now || n >= cfg.max_warmup() {
                warm = Some((u64::from(n), settled_now));
            }
        }
        let measured = match warm {
            Some((n, _)) => i - n,
            None => 0,
        };
        if warm.is_some() && measured >= u64::from(cfg.runs) {
            return 0;
        }
        let pad = cfg.env_pad.then(|| &pad_buf[..rng.pad_len()]);
        let line = match run_once(cfg, pad) {
            Ok(r) => {
                if warm.is_none() {
                    walls.push(r.wall_ns);
                }
                let info = warm.map(|(n, s)| (n, cfg.adaptive().then_some(s)));
                crate::json::run_line(i, info, &r)
            }
            Err(RunError::Spawn(e)) => {
                let line = crate::json::spawn_error_line(&e.to_string(), cmd_bytes(&cfg.cmd[0]));
                let _ = writeln!(out, "{line}").and_then(|_| out.flush());
                return 3;
            }
            Err(RunError::Internal(msg)) => {
                eprintln!("runner: {msg}");
                return 1;
            }
        };
        if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
            eprintln!("runner: cannot write results: {e}");
            return 1;
        }
        i += 1;
    }
}

fn cmd_bytes(c: &OsString) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    c.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Config;
    use serde_json::Value;

    fn cfg(cmd: &[&str]) -> Config {
        Config {
            runs: 1,
            warmup: 0,
            warmup_cap: None,
            settle: 5,
            band: 0.1,
            timeout: Duration::from_secs(30),
            env_pad: true,
            stdout_limit: 65536,
            cmd: cmd.iter().map(OsString::from).collect(),
        }
    }

    const METHODS: [Method; 2] = [Method::Poll, Method::Threads];

    /// Runs `c` once with each method (pad "xxxx") and checks each result.
    fn each(c: &Config, check: impl Fn(Method, RunResult)) {
        for m in METHODS {
            let r = run_once_with(m, c, Some("xxxx")).unwrap_or_else(|e| panic!("{m:?}: {e:?}"));
            check(m, r);
        }
    }

    #[test]
    fn capture_head_and_tail() {
        let mut c = Capture::stdout(5);
        c.push(b"abc");
        c.push(b"defgh");
        assert_eq!(c.head, b"abcde");
        assert_eq!(c.total, 8);
        let mut t = Capture::tail(4);
        t.push(b"ab");
        t.push(b"cde");
        assert_eq!(t.tail, b"bcde");
        t.push(b"0123456789");
        assert_eq!(t.tail, b"6789");
        t.push(b"x");
        assert_eq!(t.tail, b"789x");
        assert_eq!(t.total, 16);
        let mut z = Capture::stdout(0);
        z.push(b"abc");
        assert!(z.head.is_empty());
        assert_eq!(z.total, 3);
    }

    #[test]
    fn pad_lengths_cover_the_range() {
        let mut r = XorShift::from_clock();
        let lens: Vec<usize> = (0..2000).map(|_| r.pad_len()).collect();
        assert!(lens.iter().all(|&l| l < 4096));
        assert!(lens.iter().any(|&l| l < 1024));
        assert!(lens.iter().any(|&l| l >= 3072));
    }

    #[test]
    fn true_exits_zero() {
        each(&cfg(&["/bin/true"]), |m, r| {
            assert_eq!(r.exit_code, Some(0), "{m:?}");
            assert_eq!(r.signal, None, "{m:?}");
            assert!(!r.timed_out, "{m:?}");
            assert!(r.wall_ns > 0, "{m:?}");
            assert!(r.maxrss_kb > 0, "{m:?}");
            assert_eq!(r.stdout_bytes, 0, "{m:?}");
            assert!(r.stdout.is_empty(), "{m:?}");
        });
    }

    #[test]
    fn exit_code_is_reported() {
        each(&cfg(&["/bin/sh", "-c", "echo oops >&2; exit 3"]), |m, r| {
            assert_eq!(r.exit_code, Some(3), "{m:?}");
            assert_eq!(r.signal, None, "{m:?}");
            assert_eq!(r.stderr_tail, b"oops\n", "{m:?}");
        });
    }

    #[test]
    fn timeout_kills_with_sigkill() {
        let mut c = cfg(&["sleep", "5"]);
        c.timeout = Duration::from_secs_f64(0.2);
        each(&c, |m, r| {
            assert!(r.timed_out, "{m:?}");
            assert_eq!(r.signal, Some(9), "{m:?}");
            assert_eq!(r.exit_code, None, "{m:?}");
            assert!(r.wall_ns >= 200_000_000, "{m:?} wall {}", r.wall_ns);
            assert!(r.wall_ns < 3_000_000_000, "{m:?} wall {}", r.wall_ns);
        });
    }

    #[test]
    fn big_stdout_is_counted_and_truncated() {
        each(&cfg(&["head", "-c", "1000000", "/dev/zero"]), |m, r| {
            assert_eq!(r.exit_code, Some(0), "{m:?}");
            assert_eq!(r.stdout_bytes, 1_000_000, "{m:?}");
            assert_eq!(r.stdout.len(), 65536, "{m:?}");
            assert!(r.stdout.iter().all(|&b| b == 0), "{m:?}");
            assert_eq!(r.stdout_tail.len(), STDOUT_TAIL, "{m:?}");
        });
    }

    #[test]
    fn stdout_tail_holds_the_last_line_only_past_the_limit() {
        let long = cfg(&["/bin/sh", "-c", "seq 1 200000; echo RESULT"]);
        each(&long, |m, r| {
            assert_eq!(r.stdout.len(), 65536, "{m:?}");
            assert_eq!(r.stdout_tail.len(), STDOUT_TAIL, "{m:?}");
            assert!(r.stdout_tail.ends_with(b"\n200000\nRESULT\n"), "{m:?}");
        });
        each(&cfg(&["/bin/sh", "-c", "seq 1 1000"]), |m, r| {
            assert!(r.stdout_tail.is_empty(), "{m:?}");
        });
    }

    #[test]
    fn capture_for_stdout_keeps_a_tail_only_past_the_head() {
        let mut c = Capture::stdout(4);
        c.push(b"abcd");
        assert_eq!(c.into_stdout(), (b"abcd".to_vec(), 4, Vec::new()));
        let mut c = Capture::stdout(4);
        c.push(b"abc");
        c.push(b"de");
        assert_eq!(c.into_stdout(), (b"abcd".to_vec(), 5, b"abcde".to_vec()));
        let mut c = Capture::stdout(0);
        c.push(&[b'x'; STDOUT_TAIL + 10]);
        c.push(b"END");
        let (head, total, tail) = c.into_stdout();
        assert!(head.is_empty());
        assert_eq!(total, STDOUT_TAIL as u64 + 13);
        assert_eq!(tail.len(), STDOUT_TAIL);
        assert!(tail.ends_with(b"xEND"));
    }

    #[test]
    fn stdout_and_big_stderr_concurrently() {
        // 200 kB on each stream: needs both pipes drained at once.
        let c = cfg(&[
            "/bin/sh",
            "-c",
            "head -c 200000 /dev/zero | tr '\\0' a; head -c 200000 /dev/zero | tr '\\0' b >&2; printf END >&2",
        ]);
        each(&c, |m, r| {
            assert_eq!(r.exit_code, Some(0), "{m:?}");
            assert_eq!(r.stdout_bytes, 200_000, "{m:?}");
            assert_eq!(r.stdout.len(), 65536, "{m:?}");
            assert!(r.stdout.iter().all(|&b| b == b'a'), "{m:?}");
            assert_eq!(r.stderr_tail.len(), STDERR_TAIL, "{m:?}");
            assert!(r.stderr_tail.ends_with(b"bbbEND"), "{m:?}");
        });
    }

    #[test]
    fn cpu_busy_child_has_cpu_time() {
        let c = cfg(&[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done",
        ]);
        each(&c, |m, r| {
            assert_eq!(r.exit_code, Some(0), "{m:?}");
            let cpu = r.user_ns + r.sys_ns;
            assert!(cpu > 0, "{m:?}");
            // A busy single-threaded child: CPU time close to wall time, never much above.
            assert!(
                cpu <= r.wall_ns + 10_000_000,
                "{m:?} cpu {cpu} wall {}",
                r.wall_ns
            );
            // Fixed work: its CPU time does not depend on how busy the host is (the share of
            // wall time it gets does, so no ratio is checked). 300k shell loop turns take
            // well over 20 ms of CPU on any current machine.
            assert!(cpu >= 20_000_000, "{m:?} cpu {cpu} wall {}", r.wall_ns);
            assert!(r.maxrss_kb > 0, "{m:?}");
        });
    }

    #[test]
    fn env_pad_and_stdin() {
        each(
            &cfg(&["/bin/sh", "-c", "printf %s \"$RPB_PAD\"; cat"]),
            |m, r| {
                assert_eq!(r.exit_code, Some(0), "{m:?}");
                assert_eq!(r.stdout, b"xxxx", "{m:?}"); // and cat read EOF from /dev/null at once
            },
        );
        for m in METHODS {
            let c = cfg(&["/bin/sh", "-c", "printf %s \"${RPB_PAD-unset}\""]);
            let r = run_once_with(m, &c, None).unwrap();
            assert_eq!(r.stdout, b"unset", "{m:?}");
        }
    }

    #[test]
    fn grandchild_holding_the_pipe_does_not_hang_the_runner() {
        // sh exits at once; the background sleep keeps stdout open for 3 s.
        let c = cfg(&["/bin/sh", "-c", "sleep 3 & echo hi"]);
        for m in METHODS {
            let t = Instant::now();
            let r = run_once_with(m, &c, None).unwrap();
            assert_eq!(r.exit_code, Some(0), "{m:?}");
            assert_eq!(r.stdout, b"hi\n", "{m:?}");
            assert!(r.wall_ns < 1_000_000_000, "{m:?} wall {}", r.wall_ns);
            assert!(
                t.elapsed() < DRAIN_GRACE + Duration::from_millis(900),
                "{m:?}"
            );
        }
    }

    #[test]
    fn spawn_failure_is_an_error() {
        for m in METHODS {
            match run_once_with(m, &cfg(&["/nonexistent/prog"]), None) {
                Err(RunError::Spawn(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
                other => panic!("{m:?}: expected a spawn error, got {other:?}"),
            }
        }
    }

    #[test]
    fn run_all_prints_one_json_line_per_run() {
        let mut c = cfg(&["/bin/sh", "-c", "printf 'a\"b\\\\\\n'; exit 7"]);
        c.runs = 2;
        c.warmup = 1;
        let mut out = Vec::new();
        assert_eq!(run_all(&c, &mut out), 0);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["schema"], 1);
            assert_eq!(v["run"], i as u64);
            assert_eq!(v["warmup"], i == 0);
            assert_eq!(v["exit_code"], 7);
            assert_eq!(v["signal"], Value::Null);
            assert_eq!(v["stdout"], "a\"b\\\n");
            assert_eq!(v["stdout_bytes"], 5);
            assert!(v["wall_ns"].as_u64().unwrap() > 0);
            assert!(v["maxrss_kb"].as_u64().unwrap() > 0);
        }
    }

    fn lines(c: &Config) -> Vec<Value> {
        let mut out = Vec::new();
        assert_eq!(run_all(c, &mut out), 0);
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn adaptive_warmup_stops_once_settled() {
        // /bin/true settles quickly: at least `warmup`, at least `settle` runs, never the cap.
        let mut c = cfg(&["/bin/true"]);
        (c.runs, c.warmup, c.warmup_cap, c.settle, c.band) = (3, 2, Some(200), 3, 0.99);
        let v = lines(&c);
        let n = v.iter().filter(|l| l["warmup"] == true).count();
        assert!((3..200).contains(&n), "{n} warm-up runs");
        assert_eq!(v.len(), n + 3);
        for l in &v[n..] {
            assert_eq!(l["warmup_runs"], n as u64);
            assert_eq!(l["settled"], true);
        }
        assert!(v[..n].iter().all(|l| l.get("warmup_runs").is_none()));
    }

    #[test]
    fn adaptive_warmup_stops_at_the_cap() {
        // A band of 1e-9 is met only by runs of the very same nanosecond count: never here.
        let mut c = cfg(&["/bin/true"]);
        (c.runs, c.warmup, c.warmup_cap, c.settle, c.band) = (2, 1, Some(4), 4, 1e-9);
        let v = lines(&c);
        assert_eq!(v.len(), 6);
        assert_eq!(v[4]["warmup_runs"], 4);
        assert_eq!(v[4]["settled"], false);
    }

    #[test]
    fn fixed_warmup_says_so() {
        let mut c = cfg(&["/bin/true"]);
        (c.runs, c.warmup) = (1, 2);
        let v = lines(&c);
        assert_eq!(v.len(), 3);
        assert_eq!(v[2]["warmup_runs"], 2);
        assert_eq!(v[2]["settled"], Value::Null);
    }

    #[test]
    fn run_all_reports_spawn_failure() {
        let mut out = Vec::new();
        assert_eq!(run_all(&cfg(&["/nonexistent/prog"]), &mut out), 3);
        let v: Value = serde_json::from_str(String::from_utf8(out).unwrap().trim()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["cmd"], "/nonexistent/prog");
        assert!(v["error"].as_str().unwrap().starts_with("spawn failed: "));
    }
}
