//! A real S3-compatible server on a local folder, for trying the proof store's S3 path and for
//! the store's tests (which start it as a process of its own and kill it mid-upload): the
//! `s3s-fs` crate's server, built with the workspace so that nothing extra is installed.
//!
//! ```text
//! mkdir -p /tmp/s3/sheaf-proofs
//! cargo run -p sheaf-store --example s3_server -- /tmp/s3 9000 ACCESS_KEY SECRET_KEY
//! AWS_ENDPOINT=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
//!     AWS_ACCESS_KEY_ID=ACCESS_KEY AWS_SECRET_ACCESS_KEY=SECRET_KEY \
//!     sheaf coordinator --proof-store s3://sheaf-proofs ...
//! ```
//!
//! Each folder under the root is a bucket. It listens on 127.0.0.1 only.

use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

const USAGE: &str = "usage: s3_server <root folder> <port> <access key> <secret key>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, port, access_key, secret_key] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let port: u16 = port
        .parse()
        .map_err(|e| format!("port {port:?}: {e}\n{USAGE}"))?;
    let files = s3s_fs::FileSystem::new(PathBuf::from(root))
        .map_err(|e| format!("serving {root}: {e:?}"))?;
    let mut service = S3ServiceBuilder::new(files);
    service.set_auth(SimpleAuth::from_single(
        access_key.as_str(),
        secret_key.as_str(),
    ));
    let service = service.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("serving {root} as S3 at http://127.0.0.1:{port}");
    loop {
        let (socket, _) = listener.accept().await?;
        let connection = Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(connection);
    }
}
