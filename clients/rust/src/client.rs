//! The client: one channel to one sidecar, and its three calls.

use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::connect::Target;
use crate::proto::evaluation_service_client::EvaluationServiceClient;
use crate::proto::event_service_client::EventServiceClient;
use crate::proto::{self, ErrorCode, Reason};
use crate::value::{from_proto, to_optional_struct};
use crate::{Error, TrackError};

/// The deadline of a call when none is set. The sidecar answers on the same host, so a call
/// that takes longer means something is wrong: fail instead of hanging.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The subject of an evaluation. Context values are JSON scalars (string, bool, number, null);
/// the sidecar refuses lists and objects, and keys starting with `$`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub id: String,
    pub context: Map<String, Value>,
}

impl User {
    /// A user with this id and an empty context.
    pub fn new(id: impl Into<String>) -> User {
        User {
            id: id.into(),
            context: Map::new(),
        }
    }

    /// Adds a context attribute: `User::new("u1").with("plan", "pro")`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> User {
        self.context.insert(key.into(), value.into());
        self
    }

    fn message(&self) -> proto::User {
        proto::User {
            id: self.id.clone(),
            context: to_optional_struct(&self.context),
        }
    }
}

/// An application's own tracking event ("checkout-completed"), for [`Client::track`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    pub name: String,
    pub user: User,
    pub details: Map<String, Value>,
}

impl Event {
    /// An event with no details.
    pub fn new(name: impl Into<String>, user: User) -> Event {
        Event {
            name: name.into(),
            user,
            details: Map::new(),
        }
    }

    /// Adds a detail; by convention a numeric `"value"` for experiment metrics.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Event {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// The answer for one flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub flag_key: String,
    /// The served variant's value. `None` when there is none: an error, or a flag with no
    /// default for this case, where the caller's code default applies (not the same as
    /// `Some(Value::Null)`). A whole number comes as a JSON integer, other numbers as doubles.
    pub value: Option<Value>,
    /// The served variant's key; empty when none.
    pub variant: String,
    pub reason: Reason,
    pub error_code: ErrorCode,
    pub error_message: String,
    pub flag_version: i64,
    /// Every step of the evaluation, when the call asked for [`CallOptions::debug`]; a split's
    /// `distribution` step has its `bucket`.
    pub trace: Vec<proto::StackTrace>,
}

impl From<proto::Evaluation> for Evaluation {
    fn from(e: proto::Evaluation) -> Evaluation {
        Evaluation {
            reason: e.reason(),
            error_code: e.error_code(),
            flag_key: e.flag_key,
            value: e.value.map(from_proto),
            variant: e.variant,
            error_message: e.error_message,
            flag_version: e.flag_version,
            trace: e.stack_trace,
        }
    }
}

/// Settings of one `evaluate_with` or `evaluate_all_with` call.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    debug: bool,
    flag_keys: Vec<String>,
    timeout: Option<Duration>,
}

impl CallOptions {
    /// No debug trace, every flag, the client's deadline.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Asks for the evaluation's trace ([`Evaluation::trace`]), with the bucket of a split.
    pub fn debug(mut self) -> CallOptions {
        self.debug = true;
        self
    }

    /// Limits `evaluate_all` to these flags (an unknown one is reported in the list).
    pub fn flag_keys<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> CallOptions {
        self.flag_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// This call's deadline instead of the client's.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }
}

/// Configures a [`Client`]: `Client::builder(target).timeout(...).connect().await`.
#[derive(Clone, Debug)]
pub struct Builder {
    target: String,
    timeout: Option<Duration>,
}

impl Builder {
    /// The deadline of every call that sets none itself (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout);
        self
    }

    /// No default deadline: a call may then wait as long as the connection lasts.
    pub fn without_timeout(mut self) -> Builder {
        self.timeout = None;
        self
    }

    /// Opening a connection gets the calls' deadline too: a target that swallows packets fails
    /// as fast as a sidecar that does not answer.
    fn endpoint(&self, target: &Target) -> Result<Endpoint, Error> {
        let endpoint = target.endpoint()?;
        Ok(match self.timeout {
            Some(timeout) => endpoint.connect_timeout(timeout),
            None => endpoint,
        })
    }

    /// Connects now: [`Error::Unavailable`] when nothing answers at the target.
    pub async fn connect(self) -> Result<Client, Error> {
        let target = Target::parse(&self.target)?;
        let channel = target
            .connect(self.endpoint(&target)?)
            .await
            .map_err(|error| {
                Error::Unavailable(Status::unavailable(format!(
                    "cannot connect to {}: {error}",
                    self.target
                )))
            })?;
        Ok(Client {
            channel,
            timeout: self.timeout,
        })
    }

    /// Returns at once; the first call connects, and fails with [`Error::Unavailable`] if it
    /// cannot. Must be called inside a Tokio runtime.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let target = Target::parse(&self.target)?;
        let channel = target.connect_lazy(self.endpoint(&target)?);
        Ok(Client {
            channel,
            timeout: self.timeout,
        })
    }
}

/// A client of one sidecar. Cloning it is cheap and shares the connection: create one, clone it
/// where needed.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    timeout: Option<Duration>,
}

impl Client {
    /// A builder for the sidecar at `target`: `host:port` over TCP (plaintext, as the sidecar
    /// serves by default), or `unix:///absolute/path` (also `unix:relative/path`) for a Unix
    /// socket.
    pub fn builder(target: impl Into<String>) -> Builder {
        Builder {
            target: target.into(),
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }

    /// Connects to `target` with the default settings (see [`Client::builder`]).
    pub async fn connect(target: impl Into<String>) -> Result<Client, Error> {
        Client::builder(target).connect().await
    }

    /// Evaluates one flag for a user. An unknown flag is [`Error::FlagNotFound`].
    pub async fn evaluate(&self, flag_key: &str, user: &User) -> Result<Evaluation, Error> {
        self.evaluate_with(flag_key, user, &CallOptions::default())
            .await
    }

    /// [`Client::evaluate`] with options: [`CallOptions::debug`], [`CallOptions::timeout`].
    pub async fn evaluate_with(
        &self,
        flag_key: &str,
        user: &User,
        options: &CallOptions,
    ) -> Result<Evaluation, Error> {
        let message = proto::EvaluateRequest {
            flag_key: flag_key.to_owned(),
            user: Some(user.message()),
            debug: options.debug,
        };
        let timeout = options.timeout.or(self.timeout);
        let mut client = EvaluationServiceClient::new(self.channel.clone());
        let response = within(timeout, client.evaluate(request(message, timeout))).await?;
        // The sidecar always sends one; an empty default stands in rather than a panic.
        Ok(response.into_inner().evaluation.unwrap_or_default().into())
    }

    /// Evaluates every flag (or those of [`CallOptions::flag_keys`]) for a user, sorted by key.
    /// A flag that fails is reported in the list (reason `Error`); the call does not fail for it.
    pub async fn evaluate_all(&self, user: &User) -> Result<Vec<Evaluation>, Error> {
        self.evaluate_all_with(user, &CallOptions::default()).await
    }

    /// [`Client::evaluate_all`] with options: [`CallOptions::flag_keys`], `debug`, `timeout`.
    pub async fn evaluate_all_with(
        &self,
        user: &User,
        options: &CallOptions,
    ) -> Result<Vec<Evaluation>, Error> {
        let message = proto::EvaluateAllRequest {
            user: Some(user.message()),
            flag_keys: options.flag_keys.clone(),
            debug: options.debug,
        };
        let timeout = options.timeout.or(self.timeout);
        let mut client = EvaluationServiceClient::new(self.channel.clone());
        let response = within(timeout, client.evaluate_all(request(message, timeout))).await?;
        Ok(response
            .into_inner()
            .evaluations
            .into_iter()
            .map(Evaluation::from)
            .collect())
    }

    /// Sends the events on one stream, in order, and returns how many the sidecar accepted.
    /// When the call fails (an event without a name is `InvalidArgument`; full buffers are
    /// `ResourceExhausted`), [`TrackError::accepted`] still counts the events before the
    /// refused one: send the others again.
    pub async fn track(&self, events: &[Event]) -> Result<u64, TrackError> {
        let messages: Vec<proto::TrackRequest> = events
            .iter()
            .map(|event| proto::TrackRequest {
                name: event.name.clone(),
                user: Some(event.user.message()),
                details: to_optional_struct(&event.details),
            })
            .collect();
        let mut client = EventServiceClient::new(self.channel.clone());
        let stream = request(tokio_stream::iter(messages), self.timeout);
        match within(self.timeout, client.track(stream)).await {
            Ok(response) => Ok(u64::try_from(response.into_inner().accepted).unwrap_or(0)),
            Err(status) => {
                let accepted = status
                    .metadata()
                    .get("accepted-count")
                    .and_then(|count| count.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
                Err(TrackError {
                    accepted,
                    error: status.into(),
                })
            }
        }
    }
}

/// A request that tells the server its deadline (grpc-timeout).
fn request<T>(message: T, timeout: Option<Duration>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}

/// Runs a call under its deadline. tonic ends a call that outlives its grpc-timeout with
/// `CANCELLED`; past the deadline that is `DEADLINE_EXCEEDED`, as gRPC names it.
async fn within<T>(
    timeout: Option<Duration>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let Some(timeout) = timeout else {
        return call.await;
    };
    let deadline = Instant::now() + timeout;
    let exceeded = || Status::deadline_exceeded(format!("no answer within {timeout:?}"));
    match tokio::time::timeout_at(deadline, call).await {
        Ok(Err(status)) if status.code() == Code::Cancelled && Instant::now() >= deadline => {
            Err(exceeded())
        }
        Ok(result) => result,
        Err(_) => Err(exceeded()),
    }
}
