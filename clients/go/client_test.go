package flagsidecar_test

import (
	"context"
	"errors"
	"math"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flagsidecar "github.com/flag-sidecar/flag-sidecar/clients/go"
	v1 "github.com/flag-sidecar/flag-sidecar/clients/go/gen/flagsidecar/v1"
)

// deadlines is a stand-in EvaluationService that reports whether a call came with a deadline,
// and otherwise answers with the status it was given.
type deadlines struct {
	v1.UnimplementedEvaluationServiceServer
	had  chan bool
	fail error
}

func (d *deadlines) Evaluate(ctx context.Context, _ *v1.EvaluateRequest) (*v1.EvaluateResponse, error) {
	_, has := ctx.Deadline()
	d.had <- has
	if d.fail != nil {
		return nil, d.fail
	}
	return &v1.EvaluateResponse{Evaluation: &v1.Evaluation{FlagKey: "f"}}, nil
}

func serveOnUnixSocket(t *testing.T, service v1.EvaluationServiceServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	if len(path) > 100 {
		t.Skip("temporary directory too long for a socket path")
	}
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	v1.RegisterEvaluationServiceServer(server, service)
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	return "unix://" + path
}

func TestEveryCallGetsADeadline(t *testing.T) {
	service := &deadlines{had: make(chan bool, 2)}
	client, err := flagsidecar.Dial(serveOnUnixSocket(t, service))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Evaluate(context.Background(), "f", flagsidecar.User{}); err != nil {
		t.Fatal(err)
	}
	if !<-service.had {
		t.Error("a call with a context without deadline reached the server without one")
	}
	// The caller's own deadline, even a longer one, is kept.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := client.Evaluate(ctx, "f", flagsidecar.User{}); err != nil {
		t.Fatal(err)
	}
	if !<-service.had {
		t.Error("the caller's deadline was lost")
	}
}

func TestAHungCallEndsAtTheDeadline(t *testing.T) {
	hung := make(chan struct{})
	defer close(hung)
	service := &blocking{release: hung}
	client, err := flagsidecar.Dial(serveOnUnixSocket(t, service), flagsidecar.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Evaluate(context.Background(), "f", flagsidecar.User{})
	if !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

type blocking struct {
	v1.UnimplementedEvaluationServiceServer
	release chan struct{}
}

func (b *blocking) Evaluate(ctx context.Context, _ *v1.EvaluateRequest) (*v1.EvaluateResponse, error) {
	select {
	case <-ctx.Done():
	case <-b.release:
	}
	return nil, status.Error(codes.Internal, "not reached in time")
}

func TestStatusCodesMapToSentinels(t *testing.T) {
	for code, sentinel := range map[codes.Code]error{
		codes.NotFound:          flagsidecar.ErrFlagNotFound,
		codes.InvalidArgument:   flagsidecar.ErrInvalidArgument,
		codes.ResourceExhausted: flagsidecar.ErrResourceExhausted,
		codes.Unavailable:       flagsidecar.ErrUnavailable,
		codes.Internal:          flagsidecar.ErrInternal,
	} {
		service := &deadlines{had: make(chan bool, 1), fail: status.Error(code, "the message")}
		client, err := flagsidecar.Dial(serveOnUnixSocket(t, service))
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.Evaluate(context.Background(), "f", flagsidecar.User{})
		client.Close()
		var failure *flagsidecar.Error
		if !errors.Is(err, sentinel) || !errors.As(err, &failure) || failure.Message != "the message" {
			t.Errorf("%v: got %v, want %v with the message", code, err, sentinel)
		}
		if status.Code(err) != code {
			t.Errorf("%v: status.Code gives %v", code, status.Code(err))
		}
	}
}

func TestNoSidecarIsUnavailable(t *testing.T) {
	client, err := flagsidecar.Dial("unix://" + filepath.Join(t.TempDir(), "nothing-here"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Evaluate(context.Background(), "f", flagsidecar.User{})
	if !errors.Is(err, flagsidecar.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestAContextValueProtobufCannotCarryIsRefusedBeforeSending(t *testing.T) {
	client, err := flagsidecar.Dial("unix://" + filepath.Join(t.TempDir(), "nothing-here"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Evaluate(context.Background(), "f", flagsidecar.User{Context: map[string]any{"at": time.Now()}})
	if !errors.Is(err, flagsidecar.ErrInvalidArgument) {
		t.Fatalf("got %v, want ErrInvalidArgument", err)
	}
}

func TestBucketOfTheReadmeExample(t *testing.T) {
	if bucket, ok := flagsidecar.Bucket("new-checkout", "acct-42"); !ok || bucket != 55 {
		t.Fatalf("Bucket = %d, %v; README says 55", bucket, ok)
	}
}

func TestValuesThatCannotBeBucketedOn(t *testing.T) {
	for _, value := range []any{nil, math.NaN(), math.Inf(1), []any{"a"}, map[string]any{}} {
		if text, ok := flagsidecar.BucketText(value); ok {
			t.Errorf("BucketText(%#v) = %q, want not ok", value, text)
		}
	}
	for value, want := range map[any]string{int64(42): "42", int(-7): "-7", float32(2.5): "2.5", uint32(0): "0"} {
		if text, ok := flagsidecar.BucketText(value); !ok || text != want {
			t.Errorf("BucketText(%#v) = %q, %v; want %q", value, text, ok, want)
		}
	}
}
