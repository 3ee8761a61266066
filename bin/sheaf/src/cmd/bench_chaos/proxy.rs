//! A TCP fault proxy on one link: it forwards connections to its target while the link passes,
//! holds them and forwards nothing while it is blackholed (as a partition that drops packets
//! does), and resets them while the link resets. A partition that ends closes the connections it
//! held, so a client learns of it only when its own timeout or retry notices.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a link does with its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept and hold connections, forward nothing.
    Blackhole,
    /// Reset every connection.
    Reset,
}

/// One proxied link, listening on a loopback port of its own.
pub struct FaultProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (mode, watching) = watch::channel(Mode::Pass);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(serve(client, target, watching.clone()));
            }
        });
        Ok(FaultProxy {
            address,
            mode,
            accept,
        })
    }

    /// The URL clients use instead of the target's.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Switch the link's mode; connections in flight follow at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // Held or refused while the link is down.
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Pass => break,
            Mode::Reset => return reset(client),
            Mode::Blackhole => {
                if mode.changed().await.is_err() {
                    return;
                }
                // The partition ended: the held connection is closed, not replayed.
                if *mode.borrow() == Mode::Pass {
                    return;
                }
            }
        }
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return reset(client);
    };
    let _ = upstream.set_nodelay(true);
    let (mut client, mut upstream) = (client, upstream);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
        _ = mode.wait_for(|m| *m != Mode::Pass) => {}
    }
    // The link went down in the middle of the connection.
    if *mode.borrow() == Mode::Blackhole {
        let _ = mode.wait_for(|m| *m != Mode::Blackhole).await;
    }
    reset(upstream);
    reset(client);
}

/// Close with a TCP reset rather than a clean end of stream.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
