//! Targets (`host:port`, `http://host:port`, `unix:` and a path) to tonic channels.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower_service::Service;

use crate::Error;

/// Where a target points.
#[derive(Debug, PartialEq)]
pub(crate) enum Target {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    /// `unix:///abs/path` or `unix:relative/path` (gRPC's naming), else TCP: `host:port`, with
    /// or without `http://`.
    pub(crate) fn parse(target: &str) -> Result<Target, Error> {
        let invalid = |why: &str| Error::InvalidTarget(format!("{target:?}: {why}"));
        if let Some(rest) = target.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || (rest.starts_with("//") && !path.starts_with('/')) {
                return Err(invalid(
                    "a Unix socket target is unix:///absolute/path or unix:relative/path",
                ));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        let uri = if target.contains("://") {
            target.to_owned()
        } else {
            format!("http://{target}")
        };
        match uri.parse::<Uri>() {
            Ok(parsed) if parsed.scheme_str() == Some("http") && parsed.port().is_some() => {
                Ok(Target::Tcp(uri))
            }
            Ok(_) => Err(invalid(
                "expected host:port (plaintext), or unix: and a socket path",
            )),
            Err(error) => Err(invalid(&error.to_string())),
        }
    }

    pub(crate) fn endpoint(&self) -> Result<Endpoint, Error> {
        let uri = match self {
            Target::Tcp(uri) => uri.clone(),
            // The connector ignores the address; the authority is what the server sees.
            Target::Unix(_) => "http://localhost".to_owned(),
        };
        Endpoint::from_shared(uri).map_err(|error| Error::InvalidTarget(error.to_string()))
    }

    pub(crate) async fn connect(
        &self,
        endpoint: Endpoint,
    ) -> Result<Channel, tonic::transport::Error> {
        match self {
            Target::Tcp(_) => endpoint.connect().await,
            Target::Unix(path) => {
                endpoint
                    .connect_with_connector(UnixConnector(Arc::new(path.clone())))
                    .await
            }
        }
    }

    pub(crate) fn connect_lazy(&self, endpoint: Endpoint) -> Channel {
        match self {
            Target::Tcp(_) => endpoint.connect_lazy(),
            Target::Unix(path) => {
                endpoint.connect_with_connector_lazy(UnixConnector(Arc::new(path.clone())))
            }
        }
    }
}

/// Opens a Unix stream socket for each connection the channel makes.
#[derive(Clone)]
struct UnixConnector(Arc<PathBuf>);

impl Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move { Ok(TokioIo::new(UnixStream::connect(path.as_path()).await?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let tcp = |s: &str| Target::Tcp(s.to_owned());
        let unix = |s: &str| Target::Unix(PathBuf::from(s));
        assert_eq!(
            Target::parse("127.0.0.1:50051").unwrap(),
            tcp("http://127.0.0.1:50051")
        );
        assert_eq!(
            Target::parse("localhost:1").unwrap(),
            tcp("http://localhost:1")
        );
        assert_eq!(
            Target::parse("[::1]:50051").unwrap(),
            tcp("http://[::1]:50051")
        );
        assert_eq!(Target::parse("http://h:2").unwrap(), tcp("http://h:2"));
        assert_eq!(
            Target::parse("unix:///run/s.sock").unwrap(),
            unix("/run/s.sock")
        );
        assert_eq!(
            Target::parse("unix:/run/s.sock").unwrap(),
            unix("/run/s.sock")
        );
        assert_eq!(
            Target::parse("unix:rel/s.sock").unwrap(),
            unix("rel/s.sock")
        );
        for bad in [
            "",
            "unix:",
            "unix://",
            "unix://host/path",
            "https://h:1",
            "no-port",
            "h:x",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(Error::InvalidTarget(_))),
                "{bad:?}"
            );
        }
    }
}
