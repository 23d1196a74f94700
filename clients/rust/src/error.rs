//! gRPC status codes as an error enum that callers can match on.

use std::fmt;

use tonic::{Code, Status};

/// A failed call. Each variant keeps the [`Status`] the sidecar (or the transport) gave, so the
/// code, message and metadata stay readable ([`Error::status`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `NOT_FOUND`: `evaluate` named a flag the loaded set does not have.
    FlagNotFound(Status),
    /// `INVALID_ARGUMENT`: the request was refused as malformed: an empty flag key, a context
    /// key starting with `$`, a list or object in the context, a key over a limit, an event
    /// without a name.
    InvalidArgument(Status),
    /// `RESOURCE_EXHAUSTED`: over a limit of the sidecar, or `track`'s event buffer and spool
    /// are full: send the rest again after a pause.
    ResourceExhausted(Status),
    /// `UNAVAILABLE`: the sidecar cannot be reached or has no flag set loaded yet.
    Unavailable(Status),
    /// `DEADLINE_EXCEEDED`: the call's deadline passed.
    DeadlineExceeded(Status),
    /// `CANCELLED`: the call was cancelled.
    Cancelled(Status),
    /// `INTERNAL` or `UNKNOWN`: a bug in the sidecar; its log has the details.
    Internal(Status),
    /// Any other status code.
    Other(Status),
    /// The target is neither `host:port`, `http://host:port` nor `unix:` and a path.
    InvalidTarget(String),
}

impl Error {
    /// The gRPC status code (`InvalidArgument` for an invalid target).
    pub fn code(&self) -> Code {
        match self.status() {
            Some(status) => status.code(),
            None => Code::InvalidArgument,
        }
    }

    /// The status the call ended with; `None` for an invalid target, which never made a call.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::FlagNotFound(status)
            | Error::InvalidArgument(status)
            | Error::ResourceExhausted(status)
            | Error::Unavailable(status)
            | Error::DeadlineExceeded(status)
            | Error::Cancelled(status)
            | Error::Internal(status)
            | Error::Other(status) => Some(status),
            Error::InvalidTarget(_) => None,
        }
    }

    /// The status message (the sidecar's explanation, for people).
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidTarget(message) => message,
            _ => self.status().map_or("", Status::message),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Error::FlagNotFound(_) => "flag not found",
            Error::InvalidArgument(_) => "invalid argument",
            Error::ResourceExhausted(_) => "resource exhausted",
            Error::Unavailable(_) => "unavailable",
            Error::DeadlineExceeded(_) => "deadline exceeded",
            Error::Cancelled(_) => "cancelled",
            Error::Internal(_) => "internal error",
            Error::Other(_) => "call failed",
            Error::InvalidTarget(_) => "invalid target",
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        match status.code() {
            Code::NotFound => Error::FlagNotFound(status),
            Code::InvalidArgument => Error::InvalidArgument(status),
            Code::ResourceExhausted => Error::ResourceExhausted(status),
            Code::Unavailable => Error::Unavailable(status),
            Code::DeadlineExceeded => Error::DeadlineExceeded(status),
            Code::Cancelled => Error::Cancelled(status),
            Code::Internal | Code::Unknown => Error::Internal(status),
            _ => Error::Other(status),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Other(status) => write!(
                f,
                "{}: {:?}: {}",
                self.kind(),
                status.code(),
                status.message()
            ),
            _ => write!(f, "{}: {}", self.kind(), self.message()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.status().map(|status| status as _)
    }
}

/// A failed `track`: the error, and how many of the first events the sidecar accepted before
/// it (send the others again).
#[derive(Debug)]
pub struct TrackError {
    /// Events accepted, from the start of the list, before the call failed.
    pub accepted: u64,
    /// Why the call failed.
    pub error: Error,
}

impl fmt::Display for TrackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} accepted)", self.error, self.accepted)
    }
}

impl std::error::Error for TrackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<TrackError> for Error {
    fn from(error: TrackError) -> Self {
        error.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_variants_and_keep_the_status() {
        type IsVariant = fn(&Error) -> bool;
        let cases: [(Code, IsVariant); 9] = [
            (Code::NotFound, |e| matches!(e, Error::FlagNotFound(_))),
            (Code::InvalidArgument, |e| {
                matches!(e, Error::InvalidArgument(_))
            }),
            (Code::ResourceExhausted, |e| {
                matches!(e, Error::ResourceExhausted(_))
            }),
            (Code::Unavailable, |e| matches!(e, Error::Unavailable(_))),
            (Code::DeadlineExceeded, |e| {
                matches!(e, Error::DeadlineExceeded(_))
            }),
            (Code::Cancelled, |e| matches!(e, Error::Cancelled(_))),
            (Code::Internal, |e| matches!(e, Error::Internal(_))),
            (Code::Unknown, |e| matches!(e, Error::Internal(_))),
            (Code::PermissionDenied, |e| matches!(e, Error::Other(_))),
        ];
        for (code, is_variant) in cases {
            let error = Error::from(Status::new(code, "the message"));
            assert!(is_variant(&error), "{code:?} became {error:?}");
            assert_eq!(error.code(), code);
            assert_eq!(error.message(), "the message");
            let source = std::error::Error::source(&error).expect("the status is the source");
            assert!(source.downcast_ref::<Status>().is_some());
        }
    }

    #[test]
    fn messages_say_what_failed() {
        let error = Error::from(Status::not_found("flag 'x' not found"));
        assert_eq!(error.to_string(), "flag not found: flag 'x' not found");
        let error = Error::from(Status::permission_denied("no"));
        assert_eq!(error.to_string(), "call failed: PermissionDenied: no");
        let error = TrackError {
            accepted: 2,
            error: Error::from(Status::invalid_argument("name is required")),
        };
        assert_eq!(
            error.to_string(),
            "invalid argument: name is required (2 accepted)"
        );
        assert_eq!(
            Error::InvalidTarget("x".into()).code(),
            Code::InvalidArgument
        );
    }
}
