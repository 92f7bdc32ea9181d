//! `pods/exec` over WebSocket, as kubectl (1.30+) and kube-rs (`ws` feature) speak it: the
//! channel protocol `v5.channel.k8s.io` (or `v4.channel.k8s.io`). Every binary frame starts
//! with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final status (a `Status` object),
//! 4 terminal resize, and with v5 255 = "close channel N" (the client closes stdin that way).
//!
//! There is no container runtime here: what a command does is decided by an [`ExecHandler`]
//! installed with [`crate::ApiServer::set_exec_handler`] (tests and `tusk up` plug in their
//! models). Without a handler every exec fails with a clear message, as on a node whose
//! runtime cannot run the command.

use crate::ApiServer;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// What a client asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    /// The container (`?container=`), empty when the client named none.
    pub container: String,
    pub command: Vec<String>,
    /// Everything the client wrote to stdin before closing it (empty without `?stdin=true`,
    /// and with `?tty=true`: see [`ExecRequest::tty`]).
    pub stdin: Vec<u8>,
    /// `?tty=true` (`kubectl exec -t`): an interactive terminal. There is no process to stream
    /// keystrokes to, so the command runs at once without waiting for stdin (a terminal never
    /// closes it; waiting would hang `kubectl exec -it`), and what it prints goes to stdout
    /// with CRLF line ends, as a terminal merges stderr into it.
    pub tty: bool,
}

/// What the command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Runs commands "in" pods. Called without the store lock held; it may lock the store itself
/// (through the [`ApiServer`] it captured) to look at or change objects.
pub type ExecHandler = Arc<dyn Fn(&ExecRequest) -> ExecOutput + Send + Sync>;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// The subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

#[derive(Debug, Deserialize)]
pub(crate) struct ExecQuery {
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    stdin: Option<bool>,
    #[serde(default)]
    tty: Option<bool>,
}

/// `command` is repeated in the query string (`?command=psql&command=-c`), which serde's
/// urlencoded maps cannot hold; read it by hand.
fn commands(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "command")
        .map(|(_, v)| crate::http::decode(v))
        .collect()
}

pub(crate) async fn upgrade(
    State(server): State<ApiServer>,
    Path((namespace, pod)): Path<(String, String)>,
    Query(query): Query<ExecQuery>,
    uri: axum::http::Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let command = commands(uri.query());
    if command.is_empty() {
        return crate::http::error_response(&crate::error::ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let exists = server
        .with_store(|s| crate::Objects::get(s, "v1", "Pod", Some(&namespace), &pod).is_some());
    if !exists {
        return crate::http::error_response(&crate::error::ApiError::new(
            404,
            "NotFound",
            format!("pods \"{pod}\" not found"),
        ));
    }
    let request = ExecRequest {
        namespace,
        pod,
        container: query.container.unwrap_or_default(),
        command,
        stdin: Vec::new(),
        tty: query.tty.unwrap_or(false),
    };
    let wants_stdin = query.stdin.unwrap_or(false) && !request.tty;
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| session(server, socket, request, wants_stdin))
}

async fn session(server: ApiServer, mut socket: WebSocket, mut request: ExecRequest, stdin: bool) {
    let v5 = socket.protocol().and_then(|p| p.to_str().ok()) == Some(PROTOCOLS[0]);
    if stdin {
        // Read stdin until the client closes it (v5: [255, 0]) or the socket.
        while let Some(Ok(message)) = socket.recv().await {
            let data = match message {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_str().as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            match data.split_first() {
                Some((&STDIN, rest)) => request.stdin.extend_from_slice(rest),
                Some((&CLOSE, [STDIN, ..])) if v5 => break,
                _ => {}
            }
        }
    }
    if request.tty {
        // kubectl creates its streams (error, stdin, stdout, resize) after the upgrade and
        // discards frames for a stream it has not created yet ('Unknown stream id'); its first
        // message, the terminal's size, says they exist. Bounded: a terminal without a size
        // sends nothing.
        let _ = tokio::time::timeout(FIRST_MESSAGE_WAIT, socket.recv()).await;
    }
    let output = match server.exec_handler() {
        Some(handler) => {
            let r = request.clone();
            tokio::task::spawn_blocking(move || handler(&r))
                .await
                .unwrap_or_else(|e| ExecOutput {
                    stderr: format!("exec handler failed: {e}").into_bytes(),
                    exit_code: 126,
                    ..Default::default()
                })
        }
        None => ExecOutput {
            stderr: format!(
                "this API server runs no containers: {:?} cannot run in {}/{}\n",
                request.command, request.namespace, request.pod
            )
            .into_bytes(),
            exit_code: 126,
            ..Default::default()
        },
    };
    let output = if request.tty {
        on_terminal(output)
    } else {
        output
    };
    for (channel, bytes) in [(STDOUT, &output.stdout), (STDERR, &output.stderr)] {
        // Moderate frames, as a kubelet streams them.
        for chunk in bytes.chunks(32 * 1024) {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(chunk);
            if socket.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
    }
    let mut frame = vec![STATUS];
    frame.extend_from_slice(status(output.exit_code).to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    // A normal closure code: kubectl treats a close without one (1005) as a stream error.
    let _ = socket
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    // Read what the client still sends until its close reply (bounded): a socket closed with
    // unread input (a terminal's keystrokes and resizes with `-it`) is reset rather than
    // closed, and kubectl then loses the status above to 'connection reset by peer'.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long an exec with a terminal waits for the client's first message before it runs.
const FIRST_MESSAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a finished exec waits for the client's close reply.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a terminal shows: stderr after stdout on the one stream, `\n` as `\r\n` (kubectl
/// puts the local terminal in raw mode and reads no stderr channel with a TTY).
pub fn on_terminal(output: ExecOutput) -> ExecOutput {
    let mut stdout = Vec::with_capacity(output.stdout.len() + output.stderr.len());
    for &b in output.stdout.iter().chain(output.stderr.iter()) {
        if b == b'\n' && stdout.last() != Some(&b'\r') {
            stdout.push(b'\r');
        }
        stdout.push(b);
    }
    ExecOutput {
        stdout,
        stderr: Vec::new(),
        exit_code: output.exit_code,
    }
}

/// The final `Status` on channel 3, as the kubelet reports it.
pub fn status(exit_code: i32) -> serde_json::Value {
    if exit_code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {exit_code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_commands_are_read_in_order_and_decoded() {
        let q = "command=psql&command=--set%3DON_ERROR_STOP%3D1&stdin=true&command=a+b";
        assert_eq!(
            commands(Some(q)),
            vec!["psql", "--set=ON_ERROR_STOP=1", "a b"]
        );
        assert!(commands(None).is_empty());
        assert_eq!(crate::http::decode("100%"), "100%");
        // A `%` before a multi-byte character is kept, not a panic.
        assert_eq!(crate::http::decode("%aé"), "%aé");
    }

    #[test]
    fn a_terminal_gets_one_stream_with_crlf() {
        let out = on_terminal(ExecOutput {
            stdout: b"a\nb\r\n".to_vec(),
            stderr: b"oops\n".to_vec(),
            exit_code: 2,
        });
        assert_eq!(out.stdout, b"a\r\nb\r\noops\r\n");
        assert!(out.stderr.is_empty());
        assert_eq!(out.exit_code, 2);
    }

    #[test]
    fn non_zero_exit_is_a_failure_status_with_the_code() {
        assert_eq!(status(0)["status"], "Success");
        let s = status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
