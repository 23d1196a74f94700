package flagsidecar

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels for errors.Is; each *Error returned by a call wraps one of them (or none, for a
// status code with no sentinel here).
var (
	// ErrFlagNotFound: Evaluate named a flag the loaded set does not have (NOT_FOUND).
	ErrFlagNotFound = errors.New("flagsidecar: flag not found")
	// ErrInvalidArgument: the request was refused as malformed (INVALID_ARGUMENT): an empty flag
	// key, a context key starting with "$", a list or object in the context, a key over a limit,
	// an event without a name.
	ErrInvalidArgument = errors.New("flagsidecar: invalid argument")
	// ErrResourceExhausted: over a limit of the sidecar (RESOURCE_EXHAUSTED), or Track's event
	// buffer and spool are full: send the rest again after a pause.
	ErrResourceExhausted = errors.New("flagsidecar: resource exhausted")
	// ErrUnavailable: the sidecar cannot be reached or has no flag set loaded yet (UNAVAILABLE).
	ErrUnavailable = errors.New("flagsidecar: unavailable")
	// ErrInternal: a bug in the sidecar (INTERNAL or UNKNOWN); the sidecar's log has the details.
	ErrInternal = errors.New("flagsidecar: internal error")
)

// Error is a failed call: its gRPC status code and message. errors.Is matches the sentinel of
// its code, context.DeadlineExceeded for DEADLINE_EXCEEDED and context.Canceled for CANCELLED.
type Error struct {
	Code    codes.Code
	Message string
	kind    error
}

func (e *Error) Error() string {
	if e.kind != nil {
		return fmt.Sprintf("%v: %s", e.kind, e.Message)
	}
	return fmt.Sprintf("flagsidecar: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.kind }

// GRPCStatus lets status.FromError and status.Code read the original status.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

var sentinels = map[codes.Code]error{
	codes.NotFound:          ErrFlagNotFound,
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.ResourceExhausted: ErrResourceExhausted,
	codes.Unavailable:       ErrUnavailable,
	codes.Internal:          ErrInternal,
	codes.Unknown:           ErrInternal,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.Canceled:          context.Canceled,
}

// fromRPC turns an error of a generated stub into an *Error (nil stays nil).
func fromRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{Code: st.Code(), Message: st.Message(), kind: sentinels[st.Code()]}
}

// invalid is a request the client refuses before sending it (a context value protobuf cannot carry).
func invalid(format string, args ...any) error {
	return &Error{Code: codes.InvalidArgument, Message: fmt.Sprintf(format, args...), kind: ErrInvalidArgument}
}
