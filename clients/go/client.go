package flagsidecar

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	v1 "github.com/flag-sidecar/flag-sidecar/clients/go/gen/flagsidecar/v1"
)

// DefaultTimeout is the deadline of a call whose context has none. The sidecar answers on the
// same host, so a call that takes longer means something is wrong; fail instead of hanging.
const DefaultTimeout = time.Second

// Reason says why a variant was served; ErrorCode what went wrong (OpenFeature's names).
type (
	Reason    = v1.Reason
	ErrorCode = v1.ErrorCode
)

const (
	ReasonStatic         = v1.Reason_STATIC
	ReasonDefault        = v1.Reason_DEFAULT
	ReasonTargetingMatch = v1.Reason_TARGETING_MATCH
	ReasonSplit          = v1.Reason_SPLIT
	ReasonDisabled       = v1.Reason_DISABLED
	ReasonError          = v1.Reason_ERROR

	ErrorCodeNone         = v1.ErrorCode_ERROR_CODE_UNSPECIFIED
	ErrorCodeFlagNotFound = v1.ErrorCode_FLAG_NOT_FOUND
)

// User is the subject of an evaluation. Context values are JSON scalars: string, bool, a number
// type or nil; the sidecar refuses lists and objects, and keys starting with "$".
type User struct {
	ID      string
	Context map[string]any
}

// Evaluation is the answer for one flag.
type Evaluation struct {
	FlagKey string
	// Value is the served variant's value as encoding/json would decode it (nil, bool, float64,
	// string, []any, map[string]any). HasValue is false when there is none: an error, or a flag
	// with no default for this case, where the caller's code default applies.
	Value        any
	HasValue     bool
	Variant      string
	Reason       Reason
	ErrorCode    ErrorCode
	ErrorMessage string
	FlagVersion  int64
	// Trace holds every step of the evaluation when the call asked for WithDebug.
	Trace []*v1.StackTrace
}

// Event is an application's own tracking event ("checkout-completed"), for Track.
type Event struct {
	Name    string
	User    User
	Details map[string]any
}

// Client calls one sidecar. It is safe for concurrent use; create one and share it.
type Client struct {
	conn        *grpc.ClientConn
	evaluations v1.EvaluationServiceClient
	events      v1.EventServiceClient
	timeout     time.Duration
}

// Option configures Dial.
type Option func(*settings)

type settings struct {
	timeout     time.Duration
	dialOptions []grpc.DialOption
}

// WithTimeout sets the deadline of calls whose context has none (default DefaultTimeout; zero or
// less: no deadline, a call may then wait as long as the connection lasts).
func WithTimeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// WithDialOptions adds gRPC dial options, for example grpc.WithTransportCredentials for a
// sidecar that serves TLS (the default is plaintext, as the sidecar's is).
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, options...) }
}

// Dial returns a client for the sidecar at target: "host:port" over TCP, or "unix:///abs/path"
// (also "unix:relative/path") for a Unix socket. It does not wait for the connection: the first
// call connects, and fails with ErrUnavailable if it cannot.
func Dial(target string, options ...Option) (*Client, error) {
	s := settings{timeout: DefaultTimeout}
	for _, option := range options {
		option(&s)
	}
	dialOptions := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, s.dialOptions...)
	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:        conn,
		evaluations: v1.NewEvaluationServiceClient(conn),
		events:      v1.NewEventServiceClient(conn),
		timeout:     s.timeout,
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// CallOption configures one Evaluate or EvaluateAll call.
type CallOption func(*call)

type call struct {
	debug    bool
	flagKeys []string
}

// WithDebug asks for the evaluation's stack trace (Evaluation.Trace), with the bucket of a split.
func WithDebug() CallOption { return func(c *call) { c.debug = true } }

// WithFlagKeys limits EvaluateAll to these flags (an unknown one is reported in the list).
func WithFlagKeys(keys ...string) CallOption {
	return func(c *call) { c.flagKeys = append(c.flagKeys, keys...) }
}

func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, has := ctx.Deadline(); has || c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Evaluate evaluates one flag for a user. An unknown flag is ErrFlagNotFound.
func (c *Client) Evaluate(ctx context.Context, flagKey string, user User, options ...CallOption) (*Evaluation, error) {
	settings := callSettings(options)
	message, err := userMessage(user)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	response, err := c.evaluations.Evaluate(ctx, &v1.EvaluateRequest{FlagKey: flagKey, User: message, Debug: settings.debug})
	if err != nil {
		return nil, fromRPC(err)
	}
	return evaluation(response.GetEvaluation()), nil
}

// EvaluateAll evaluates every flag (or those of WithFlagKeys) for a user, sorted by key. A flag
// that fails is reported in the list (Reason ReasonError); the call does not fail for it.
func (c *Client) EvaluateAll(ctx context.Context, user User, options ...CallOption) ([]*Evaluation, error) {
	settings := callSettings(options)
	message, err := userMessage(user)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	response, err := c.evaluations.EvaluateAll(ctx, &v1.EvaluateAllRequest{
		User: message, FlagKeys: settings.flagKeys, Debug: settings.debug,
	})
	if err != nil {
		return nil, fromRPC(err)
	}
	answers := make([]*Evaluation, 0, len(response.GetEvaluations()))
	for _, e := range response.GetEvaluations() {
		answers = append(answers, evaluation(e))
	}
	return answers, nil
}

// Track sends events on one stream, in order, and returns how many the sidecar accepted. When
// the stream fails (an event without a name is ErrInvalidArgument; full buffers are
// ErrResourceExhausted), accepted still counts the events before the refused one: send the
// others again.
func (c *Client) Track(ctx context.Context, events ...Event) (accepted int64, err error) {
	messages := make([]*v1.TrackRequest, 0, len(events))
	for _, event := range events {
		user, err := userMessage(event.User)
		if err != nil {
			return 0, err
		}
		details, err := structOf(event.Details, "event details")
		if err != nil {
			return 0, err
		}
		messages = append(messages, &v1.TrackRequest{Name: event.Name, User: user, Details: details})
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var trailer metadata.MD
	stream, err := c.events.Track(ctx, grpc.Trailer(&trailer))
	if err != nil {
		return 0, fromRPC(err)
	}
	for _, message := range messages {
		// io.EOF: the server ended the stream; CloseAndRecv below returns its status.
		if err := stream.Send(message); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, fromRPC(err)
		}
	}
	response, err := stream.CloseAndRecv()
	if err != nil {
		if counts := trailer.Get("accepted-count"); len(counts) == 1 {
			accepted, _ = strconv.ParseInt(counts[0], 10, 64)
		}
		return accepted, fromRPC(err)
	}
	return response.GetAccepted(), nil
}

func callSettings(options []CallOption) call {
	var settings call
	for _, option := range options {
		option(&settings)
	}
	return settings
}

func userMessage(user User) (*v1.User, error) {
	context, err := structOf(user.Context, "user context")
	if err != nil {
		return nil, err
	}
	return &v1.User{Id: user.ID, Context: context}, nil
}

func structOf(fields map[string]any, what string) (*structpb.Struct, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	message, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, invalid("%s: %v", what, err)
	}
	return message, nil
}

func evaluation(e *v1.Evaluation) *Evaluation {
	answer := &Evaluation{
		FlagKey:      e.GetFlagKey(),
		HasValue:     e.GetValue() != nil,
		Variant:      e.GetVariant(),
		Reason:       e.GetReason(),
		ErrorCode:    e.GetErrorCode(),
		ErrorMessage: e.GetErrorMessage(),
		FlagVersion:  e.GetFlagVersion(),
		Trace:        e.GetStackTrace(),
	}
	if answer.HasValue {
		answer.Value = e.GetValue().AsInterface()
	}
	return answer
}
