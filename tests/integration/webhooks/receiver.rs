//! A webhook receiver for the tests: an HTTP server on a loopback address that records every
//! request (event id, signature, body, when, what it answered) and can be told to answer 500,
//! to redirect, or be stopped (connection refused) and started again on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Hit {
    pub event_id: String,
    pub signature: String,
    pub body: Bytes,
    pub at: Instant,
    pub answered: u16,
}

/// What the receiver answers.
#[derive(Debug, Clone)]
pub enum Mode {
    Ok,
    Status(u16),
    Redirect(String),
}

struct Shared {
    hits: Mutex<Vec<Hit>>,
    mode: Mutex<Mode>,
    /// Answer 500 to this many requests first, whatever the mode.
    fail_next: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Receiver {
    /// Listening on `ip`, any free port.
    pub async fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let mut r = Receiver {
            addr: listener.local_addr().unwrap(),
            shared: Arc::new(Shared {
                hits: Mutex::default(),
                mode: Mutex::new(Mode::Ok),
                fail_next: AtomicUsize::new(0),
            }),
            running: None,
        };
        r.serve(listener);
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/{*path}", post(hook))
            .with_state(self.shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.running = Some((stop, task));
    }

    /// Stops listening and closes every connection: from now on, connection refused.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await.unwrap();
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.answered))
            .collect()
    }
}

async fn hook(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let failing = s
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let mode = if failing {
        Mode::Status(500)
    } else {
        s.mode.lock().unwrap().clone()
    };
    let response = match &mode {
        Mode::Ok => StatusCode::NO_CONTENT.into_response(),
        Mode::Status(code) => StatusCode::from_u16(*code).unwrap().into_response(),
        Mode::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response(),
    };
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    s.hits.lock().unwrap().push(Hit {
        event_id: text("meridian-event-id"),
        signature: text("meridian-signature"),
        body,
        at: Instant::now(),
        answered: response.status().as_u16(),
    });
    response
}
