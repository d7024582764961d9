//! Runs a simulator's [`Router`] on loopback and wraps it with what every simulator shares: request
//! numbering, the fault script, the request log, and the `/__mock/` control routes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::counters::{Attribution, Counters, Tally};
use crate::faults::{Action, Fault, FaultScript};
use crate::request_log::{RequestLog, RequestLogEntry};

/// Requests under this prefix drive the simulator itself: they are not numbered, logged or faulted.
pub const CONTROL_PREFIX: &str = "/__mock/";

/// How long [`RunningServer::shutdown`] lets in-flight requests finish before cutting them off.
const GRACE: Duration = Duration::from_secs(5);

/// A simulator listening on 127.0.0.1. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    next_seq: AtomicU64,
    faults: FaultScript,
    log: RequestLog,
    tally: Tally,
    started: Instant,
}

impl RunningServer {
    /// For the binary: prints the one line a script waits for (`listening on URL`), serves until
    /// Ctrl-C or SIGTERM, then stops cleanly.
    pub async fn serve_until_stopped(self) -> anyhow::Result<()> {
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening on {}", self.base_url())?;
            stdout.flush()?;
        }
        terminated().await?;
        self.shutdown().await;
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far (control routes excepted), in arrival order.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.shared.log.entries()
    }

    /// What the server has answered so far, counted in total and per key.
    pub fn counters(&self) -> Counters {
        self.shared.tally.snapshot()
    }

    /// The server's fault script; rules pushed here apply to the next requests.
    pub fn faults(&self) -> &FaultScript {
        &self.shared.faults
    }

    /// Stops accepting connections and waits (briefly) for requests in flight to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Aborting the accept loop also drops the shutdown watch that open connections listen to,
        // so they close as soon as their current request is done.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `app` on 127.0.0.1 with a port chosen by the system.
pub async fn start(app: Router) -> anyhow::Result<RunningServer> {
    start_on(app, 0).await
}

/// Serves `app` on 127.0.0.1:`port` (0 lets the system choose).
pub async fn start_on(app: Router, port: u16) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        next_seq: AtomicU64::new(1),
        faults: FaultScript::new(),
        log: RequestLog::default(),
        tally: Tally::default(),
        started: Instant::now(),
    });
    let control = Router::new()
        .route(
            "/__mock/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/__mock/requests", get(list_requests))
        .route("/__mock/counters", get(counters))
        // For testing clients' defences: what a hostile or broken server might do.
        .route("/__mock/echo", get(echo))
        .route("/__mock/redirect", get(redirect))
        .route("/__mock/big", get(big))
        .with_state(shared.clone());
    let app = app
        .merge(control)
        .layer(middleware::from_fn_with_state(shared.clone(), intercept));

    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "simulator server failed");
        }
    });
    Ok(RunningServer {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Numbers each request, lets the fault script have its say, then logs the outcome.
async fn intercept(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with(CONTROL_PREFIX) {
        return next.run(req).await;
    }
    let seq = shared.next_seq.fetch_add(1, Ordering::SeqCst);
    let received_at = shared.started.elapsed();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), ToString::to_string);
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();

    let action = shared.faults.decide(seq, &path, received_at);
    let faulted = action.is_some();
    let dropped = matches!(action, Some(Action::ResetConnection));
    let response = match action {
        Some(action) => crate::faults::apply(action, req, next).await,
        None => next.run(req).await,
    };

    let status = if dropped {
        0
    } else {
        response.status().as_u16()
    };
    tracing::info!(
        "#{seq} {method} {path} -> {}",
        if dropped {
            "connection reset".into()
        } else {
            status.to_string()
        }
    );
    shared
        .tally
        .record(status, faulted, response.extensions().get::<Attribution>());
    shared.log.record(RequestLogEntry {
        seq,
        method,
        path,
        status,
        headers,
        received_at,
    });
    response
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.faults.faults())
}

async fn add_faults(
    State(shared): State<Arc<Shared>>,
    Json(faults): Json<Vec<Fault>>,
) -> impl IntoResponse {
    let added = faults.len();
    shared.faults.extend(faults);
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "added": added })),
    )
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

/// Sends back the request's query and headers, as a server that echoes (and so could leak) what
/// it was sent.
async fn echo(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Json<serde_json::Value> {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into(),
            )
        })
        .collect();
    Json(serde_json::json!({"query": uri.query(), "headers": headers}))
}

/// Redirects to `?to=URL`.
async fn redirect(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    match query.get("to") {
        Some(to) => (
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, to.clone())],
        )
            .into_response(),
        None => (StatusCode::BAD_REQUEST, "missing ?to=").into_response(),
    }
}

/// A body of `?bytes=N` bytes.
async fn big(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let bytes: usize = query
        .get("bytes")
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(1 << 20);
    vec![b'x'; bytes].into_response()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(shared.tally.snapshot())
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RequestLogEntry>> {
    Json(shared.log.entries())
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn terminated() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
