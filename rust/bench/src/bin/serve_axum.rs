//! serving_api: the logistic scorer behind axum on a tokio runtime.
//!
//! serve_axum --port P [--threads N] [--runtime current-thread|multi-thread]
//!
//! `POST /score` with `{"x": [32 numbers]}` answers `{"score": s}`; `GET /health` answers 200.
//! Bad input gets axum's own rejections: 400 (not JSON), 422 (wrong shape: not 32 numbers,
//! missing key), 415 (no JSON content type). Listens on 127.0.0.1 only. By default `--threads 1`
//! runs tokio's current-thread runtime (one thread does everything, as `flavor =
//! "current_thread"` would) and N > 1 the multi-thread runtime with N workers (what
//! `#[tokio::main]` builds); `--runtime multi-thread` keeps the multi-thread runtime at N = 1,
//! so "all cores" means the same scheduler on a host whose server gets one core. SIGTERM or
//! Ctrl-C stops it cleanly.

use std::net::{Ipv4Addr, SocketAddr};

use axum::routing::{get, post};
use axum::{Json, Router};
use rpb_bench::cli::{fail, Opts};
use rpb_bench::score::{Model, N_FEATURES};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: serve_axum --port P [--threads N] [--runtime current-thread|multi-thread]

Serves POST /score ({\"x\": [32 numbers]} -> {\"score\": s}) and GET /health on 127.0.0.1:P.
--threads N: worker threads (default 1). --runtime: tokio's current-thread runtime (the
default for N = 1; needs N = 1) or the multi-thread runtime with N workers (default for N > 1).
";

#[derive(Deserialize)]
struct ScoreRequest {
    // serde rejects any other length, so the handler never sees a bad row.
    x: [f64; N_FEATURES],
}

#[derive(Serialize)]
struct ScoreResponse {
    score: f64,
}

fn app() -> Router {
    let model = Model::default();
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/score",
            post(move |Json(req): Json<ScoreRequest>| async move {
                Json(ScoreResponse {
                    score: model.score(&req.x),
                })
            }),
        )
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(format!("cannot install the SIGTERM handler: {e}")));
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

async fn serve(port: u16) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    eprintln!("serve_axum: listening on http://{addr}");
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .unwrap_or_else(|e| fail(format!("server error: {e}")));
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| fail(format!("argument is not UTF-8: {a:?}")))
        })
        .collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts =
        Opts::parse(args, &["--port", "--threads", "--runtime"], &[]).unwrap_or_else(|e| fail(e));
    let port: u16 = opts.parse_required("--port").unwrap_or_else(|e| fail(e));
    let threads: usize = opts.parse_or("--threads", 1).unwrap_or_else(|e| fail(e));
    if threads == 0 {
        fail("--threads must be at least 1");
    }
    let multi = match opts.get("--runtime") {
        None => threads > 1,
        Some("multi-thread") => true,
        Some("current-thread") if threads == 1 => false,
        Some("current-thread") => fail("--runtime current-thread runs one thread: use --threads 1"),
        Some(other) => fail(format!(
            "unknown --runtime {other:?} (expected current-thread or multi-thread)"
        )),
    };
    let runtime = if !multi {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .unwrap_or_else(|e| fail(format!("cannot start the tokio runtime: {e}")));
    runtime.block_on(serve(port));
}
