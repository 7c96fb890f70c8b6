//! Pod port-forward over WebSocket, as the kubelet serves `GET
//! /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=9200` to clients such as kube-rs.
//!
//! Protocol (kubelet `portforward/websocket.go`, client side in kube-rs `api/portforward.rs`):
//! - subprotocol `v4.channel.k8s.io` (or none); kube-rs offers `v5.channel.k8s.io,
//!   v4.channel.k8s.io` and the kubelet picks v4, the first one it supports;
//! - binary frames whose first byte is the channel: for the i-th port, data is `2*i` and errors
//!   `2*i+1`;
//! - right after the upgrade the server sends, on both channels of each port, the port number as
//!   two little-endian bytes;
//! - when the pod refuses the connection the error channel carries the message and the port is
//!   done; when every port is done the WebSocket is closed.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Opens a connection to a port inside the pod; `None` means connection refused.
pub type PortConnector = Arc<dyn Fn(u16) -> Option<DuplexStream> + Send + Sync>;

/// The only channel subprotocol the kubelet's port-forward speaks in binary.
pub const V4_CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";

/// The pod a port-forward goes to, for the kubelet's error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortForwardTarget {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The CRI pod sandbox id (64 hex digits) the kubelet names in its errors.
    pub sandbox_id: String,
}

impl PortForwardTarget {
    /// A target whose sandbox id is derived from namespace, name and uid.
    pub fn new(namespace: &str, pod: &str, uid: &str) -> PortForwardTarget {
        PortForwardTarget {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: uid.into(),
            sandbox_id: crate::elasticsearch::sha256_fingerprint(
                format!("{namespace}/{pod}/{uid}").as_bytes(),
            ),
        }
    }

    /// What the kubelet (containerd) writes on the error channel when nothing listens.
    pub fn refused_message(&self, port: u16) -> String {
        let id = &self.sandbox_id;
        format!(
            "error forwarding port {port} to pod {id}, uid : failed to execute portforward in network namespace \
             \"/var/run/netns/cni-{short}\": failed to connect to localhost:{port} inside namespace \"{id}\", \
             IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: \
             connection refused ",
            short = &id[..12.min(id.len())]
        )
    }
}

/// Parse the `ports` query parameters (each may be a comma-separated list; `%2C` is decoded).
/// Errors carry the kubelet's texts.
pub fn parse_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let values: Vec<String> = crate::elasticsearch::parse_query(query.unwrap_or(""))
        .into_iter()
        .filter(|(k, _)| k == "ports")
        .map(|(_, v)| v)
        .collect();
    if values.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let mut ports = Vec::new();
    for value in &values {
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in value.split(',') {
            let port: u16 = p.parse().map_err(|_| {
                format!(
                    "unable to parse \"{value}\" as a port: strconv.ParseUint: parsing \"{p}\": invalid syntax"
                )
            })?;
            if port < 1 {
                return Err(format!("port \"{value}\" must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

fn text_response(status: u16, text: &str) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{text}\n"))))
        .expect("static response parts")
}

fn header_tokens(req_headers: &http::HeaderMap, name: http::header::HeaderName) -> Vec<String> {
    req_headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Answer a port-forward request: validate it, switch to WebSocket (101) and pump bytes between
/// the channels and the streams `connect(port)` returns, on a spawned task.
///
/// The server connection must be served with upgrades enabled (hyper `http1` builder
/// `.serve_connection(..).with_upgrades()`, or hyper-util's `serve_connection_with_upgrades`).
/// Errors before the upgrade are plain-text 400s, as the kubelet sends them.
pub async fn upgrade_portforward<B>(
    mut req: http::Request<B>,
    target: PortForwardTarget,
    connect: PortConnector,
) -> http::Response<Full<Bytes>>
where
    B: Send + 'static,
{
    let headers = req.headers();
    let is_ws = header_tokens(headers, http::header::CONNECTION)
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
        && header_tokens(headers, http::header::UPGRADE)
            .iter()
            .any(|t| t.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        // SPDY is not simulated; only WebSocket upgrades are served.
        return text_response(400, "Upgrade request required");
    }
    let ports = match parse_ports(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return text_response(400, &e),
    };
    let Some(key) = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return text_response(400, "missing Sec-WebSocket-Key");
    };
    let offered = header_tokens(headers, http::header::SEC_WEBSOCKET_PROTOCOL);
    let protocol = if offered.is_empty() {
        None
    } else if offered.iter().any(|p| p == V4_CHANNEL_PROTOCOL) {
        Some(V4_CHANNEL_PROTOCOL)
    } else {
        return text_response(
            400,
            &format!(
                "requested protocol(s) are not supported: {offered:?}; supports [{V4_CHANNEL_PROTOCOL}]"
            ),
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        pump(ws, ports, target, connect).await;
    });
    let mut resp = http::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(
            http::header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if let Some(p) = protocol {
        resp = resp.header(http::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp.body(Full::new(Bytes::new()))
        .expect("static response parts")
}

enum Out {
    Frame(Vec<u8>),
    PortDone,
}

fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(data.len() + 1);
    f.push(channel);
    f.extend_from_slice(data);
    f
}

async fn pump<S>(
    ws: WebSocketStream<S>,
    ports: Vec<u16>,
    target: PortForwardTarget,
    connect: PortConnector,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let mut to_pod: Vec<Option<mpsc::UnboundedSender<Bytes>>> = Vec::new();
    let mut tasks = Vec::new();
    let mut live = 0usize;

    for (i, port) in ports.iter().enumerate() {
        let data_ch = (2 * i) as u8;
        let _ = out_tx.send(Out::Frame(frame(data_ch, &port.to_le_bytes())));
        let _ = out_tx.send(Out::Frame(frame(data_ch + 1, &port.to_le_bytes())));
    }
    for (i, port) in ports.iter().enumerate() {
        let data_ch = (2 * i) as u8;
        let Some(duplex) = connect(*port) else {
            let msg = target.refused_message(*port);
            let _ = out_tx.send(Out::Frame(frame(data_ch + 1, msg.as_bytes())));
            to_pod.push(None);
            continue;
        };
        live += 1;
        let (mut rd, mut wr) = tokio::io::split(duplex);
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        to_pod.push(Some(tx));
        tasks.push(tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        }));
        let out = out_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out.send(Out::Frame(frame(data_ch, &buf[..n]))).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = out.send(Out::PortDone);
        }));
    }
    drop(out_tx);

    if live == 0 {
        // Flush the initial frames and the errors, then close.
        while let Ok(Out::Frame(f)) = out_rx.try_recv() {
            if sink.send(Message::binary(f)).await.is_err() {
                return;
            }
        }
    } else {
        loop {
            tokio::select! {
                out = out_rx.recv() => match out {
                    Some(Out::Frame(f)) => {
                        if sink.send(Message::binary(f)).await.is_err() {
                            break;
                        }
                    }
                    Some(Out::PortDone) => {
                        live -= 1;
                        if live == 0 {
                            break;
                        }
                    }
                    None => break,
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Binary(mut b))) if !b.is_empty() => {
                        let ch = b.split_to(1)[0] as usize;
                        // Data for a port; anything sent on an error channel is ignored.
                        if ch.is_multiple_of(2)
                            && let Some(Some(tx)) = to_pod.get(ch / 2)
                            && !b.is_empty()
                        {
                            let _ = tx.send(b);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    drop(to_pod);
    let _ = sink.send(Message::Close(None)).await;
    // The closing handshake: read what the client still sends until its Close. Dropping the
    // socket with unread data would make the OS reset the connection, and the client could
    // lose the error frames sent just before.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let _ = sink.close().await;
    for t in tasks {
        t.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_parsed_as_the_kubelet_does() {
        assert_eq!(parse_ports(Some("ports=9200")), Ok(vec![9200]));
        assert_eq!(parse_ports(Some("&ports=80%2C1234")), Ok(vec![80, 1234]));
        assert_eq!(parse_ports(Some("ports=1&ports=2,3")), Ok(vec![1, 2, 3]));
        assert_eq!(
            parse_ports(None),
            Err("query parameter \"port\" is required".into())
        );
        assert_eq!(
            parse_ports(Some("ports=")),
            Err("query parameter \"port\" cannot be empty".into())
        );
        assert_eq!(
            parse_ports(Some("ports=http")),
            Err("unable to parse \"http\" as a port: strconv.ParseUint: parsing \"http\": invalid syntax".into())
        );
        assert_eq!(
            parse_ports(Some("ports=0")),
            Err("port \"0\" must be > 0".into())
        );
    }

    #[test]
    fn refused_message_names_port_and_sandbox() {
        let t = PortForwardTarget::new("prod", "logs-es-default-0", "u1");
        assert_eq!(t.sandbox_id.len(), 64);
        let m = t.refused_message(9201);
        assert!(m.starts_with(&format!(
            "error forwarding port 9201 to pod {}, uid : ",
            t.sandbox_id
        )));
        assert!(m.contains("dial tcp4 127.0.0.1:9201: connect: connection refused"));
    }
}
