package flagsidecar_test

// The conformance suite (tests/conformance/README.md) against a real `flag-sidecar serve` that
// this test starts on a free TCP port and a Unix socket: every vector over both, through this
// package, with each split's bucket computed here (Bucket, twmb/murmur3) and compared.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	flagsidecar "github.com/flag-sidecar/flag-sidecar/clients/go"
)

const conformanceDir = "../../tests/conformance"

type vectorFile struct {
	Flags   string   `json:"flags"`
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name    string  `json:"name"`
	Method  string  `json:"method"`
	Request request `json:"request"`
	Expect  expect  `json:"expect"`
}

type request struct {
	FlagKey  string      `json:"flag_key"`
	User     jsonUser    `json:"user"`
	FlagKeys []string    `json:"flag_keys"`
	Debug    bool        `json:"debug"`
	Events   []jsonEvent `json:"events"`
}

type jsonUser struct {
	ID      string         `json:"id"`
	Context map[string]any `json:"context"`
}

type jsonEvent struct {
	Name    string         `json:"name"`
	User    jsonUser       `json:"user"`
	Details map[string]any `json:"details"`
}

type expect struct {
	Status      string           `json:"status"`
	Evaluation  *jsonEvaluation  `json:"evaluation"`
	Evaluations []jsonEvaluation `json:"evaluations"`
	Total       *int             `json:"total"`
	Accepted    *int64           `json:"accepted"`
}

type jsonEvaluation struct {
	FlagKey     string `json:"flag_key"`
	Value       json.RawMessage
	Variant     string      `json:"variant"`
	Reason      string      `json:"reason"`
	ErrorCode   string      `json:"error_code"`
	FlagVersion int64       `json:"flag_version"`
	Bucket      *jsonBucket `json:"bucket"`
}

type jsonBucket struct {
	By     string `json:"by"`
	Text   string `json:"text"`
	Bucket int    `json:"bucket"`
}

func (u jsonUser) user() flagsidecar.User { return flagsidecar.User{ID: u.ID, Context: u.Context} }

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(conformanceDir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file vectorFile
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("vectors.json has no vectors")
	}
	return file
}

// sidecarCommand is FLAG_SIDECAR (a path) if set, else the repository's .venv (made by `make`).
func sidecarCommand(t *testing.T) string {
	if command := os.Getenv("FLAG_SIDECAR"); command != "" {
		return command
	}
	command, err := filepath.Abs("../../.venv/bin/flag-sidecar")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(command); err != nil {
		t.Fatalf("no sidecar to test against: %v (run `make test-go` from the repository root, "+
			"which installs it, or set FLAG_SIDECAR to a flag-sidecar command)", err)
	}
	return command
}

var listening = regexp.MustCompile(`^listening on (\S+) `)

// startSidecar runs `flag-sidecar serve` on 127.0.0.1:0 and a Unix socket and returns both
// addresses once it logs them; the process is killed when the test ends.
func startSidecar(t *testing.T, flags string) (tcp, unix string) {
	t.Helper()
	// Not t.TempDir(): its long name could pass the 108-byte limit of a socket path.
	dir, err := os.MkdirTemp("", "flag-sidecar-go")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := "unix://" + filepath.Join(dir, "grpc.sock")
	command := exec.Command(sidecarCommand(t), "serve", "--flags", flags,
		"--listen", "127.0.0.1:0", "--listen", socket)
	var env []string
	for _, variable := range os.Environ() {
		if !strings.HasPrefix(variable, "FLAG_SIDECAR_") {
			env = append(env, variable)
		}
	}
	// Not the fixed management port: tests and other sidecars run side by side.
	command.Env = append(env, "FLAG_SIDECAR_MANAGEMENT_LISTEN=127.0.0.1:0", "PYTHONUNBUFFERED=1")
	stderr, err := command.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := command.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = command.Process.Kill()
		_ = command.Wait()
	})
	addresses := make(chan string)
	var log []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			log = append(log, scanner.Text())
			var line struct {
				Event   string `json:"event"`
				Message string `json:"message"`
			}
			if json.Unmarshal(scanner.Bytes(), &line) == nil && line.Event == "listening" {
				if match := listening.FindStringSubmatch(line.Message); match != nil {
					addresses <- match[1]
				}
			}
		}
	}()
	timeout := time.After(30 * time.Second)
	for tcp == "" || unix == "" {
		select {
		case address := <-addresses:
			if strings.HasPrefix(address, "unix:") {
				unix = address
			} else {
				tcp = address
			}
		case <-done:
			t.Fatalf("flag-sidecar serve exited before listening:\n%s", strings.Join(log, "\n"))
		case <-timeout:
			t.Fatalf("flag-sidecar serve did not listen within 30 s")
		}
	}
	go func() { // the reader goes on, so that the sidecar never blocks on a full pipe
		for {
			select {
			case <-addresses:
			case <-done:
				return
			}
		}
	}()
	return tcp, unix
}

func waitServing(t *testing.T, target string) {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		answer, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && answer.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not SERVING: %v %v", target, answer, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	file := loadVectors(t)
	tcp, unix := startSidecar(t, filepath.Join(conformanceDir, file.Flags))
	waitServing(t, tcp)
	for _, target := range []string{tcp, unix} {
		client, err := flagsidecar.Dial(target, flagsidecar.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		transport := "tcp"
		if strings.HasPrefix(target, "unix:") {
			transport = "unix"
		}
		t.Run(transport, func(t *testing.T) {
			for _, v := range file.Vectors {
				t.Run(v.Name, func(t *testing.T) { runVector(t, client, v) })
			}
		})
	}
}

// sentinels: what errors.Is must match for each status the vectors expect.
var sentinels = map[codes.Code]error{
	codes.NotFound:        flagsidecar.ErrFlagNotFound,
	codes.InvalidArgument: flagsidecar.ErrInvalidArgument,
}

func runVector(t *testing.T, client *flagsidecar.Client, v vector) {
	ctx := context.Background()
	var options []flagsidecar.CallOption
	if v.Request.Debug {
		options = append(options, flagsidecar.WithDebug())
	}
	var err error
	switch v.Method {
	case "Evaluate":
		var answer *flagsidecar.Evaluation
		answer, err = client.Evaluate(ctx, v.Request.FlagKey, v.Request.User.user(), options...)
		if err == nil && v.Expect.Evaluation != nil {
			checkEvaluation(t, answer, *v.Expect.Evaluation, v.Request.User, v.Request.Debug)
		}
	case "EvaluateAll":
		if len(v.Request.FlagKeys) > 0 {
			options = append(options, flagsidecar.WithFlagKeys(v.Request.FlagKeys...))
		}
		var answers []*flagsidecar.Evaluation
		answers, err = client.EvaluateAll(ctx, v.Request.User.user(), options...)
		if err == nil && v.Expect.Total != nil {
			if len(answers) != *v.Expect.Total || len(answers) != len(v.Expect.Evaluations) {
				t.Fatalf("%d evaluations, want %d", len(answers), *v.Expect.Total)
			}
			for i, answer := range answers {
				checkEvaluation(t, answer, v.Expect.Evaluations[i], v.Request.User, v.Request.Debug)
			}
		}
	case "Track":
		events := make([]flagsidecar.Event, 0, len(v.Request.Events))
		for _, e := range v.Request.Events {
			events = append(events, flagsidecar.Event{Name: e.Name, User: e.User.user(), Details: e.Details})
		}
		var accepted int64
		accepted, err = client.Track(ctx, events...)
		if v.Expect.Accepted == nil {
			t.Fatal("a Track vector must say how many events are accepted")
		}
		if accepted != *v.Expect.Accepted {
			t.Errorf("accepted %d, want %d", accepted, *v.Expect.Accepted)
		}
	default:
		t.Fatalf("unknown method %q", v.Method)
	}
	var want codes.Code
	if err := want.UnmarshalJSON([]byte(`"` + v.Expect.Status + `"`)); err != nil {
		t.Fatalf("status %q: %v", v.Expect.Status, err)
	}
	if got := status.Code(err); got != want {
		t.Fatalf("status %v (%v), want %v", got, err, want)
	}
	if sentinel := sentinels[want]; sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, %v) is false", err, sentinel)
	}
}

func checkEvaluation(t *testing.T, got *flagsidecar.Evaluation, want jsonEvaluation, user jsonUser, debug bool) {
	t.Helper()
	fields := [][3]any{
		{"flag_key", got.FlagKey, want.FlagKey},
		{"variant", got.Variant, want.Variant},
		{"reason", got.Reason.String(), want.Reason},
		{"error_code", got.ErrorCode.String(), want.ErrorCode},
		{"flag_version", got.FlagVersion, want.FlagVersion},
	}
	for _, field := range fields {
		if field[1] != field[2] {
			t.Errorf("%s %s: %v, want %v", want.FlagKey, field[0], field[1], field[2])
		}
	}
	// No "value" in the vector means no value, which differs from JSON null.
	if got.HasValue != (want.Value != nil) {
		t.Errorf("%s: has a value %v (%v), want %v", want.FlagKey, got.HasValue, got.Value, want.Value != nil)
	} else if want.Value != nil {
		var value any
		if err := json.Unmarshal(want.Value, &value); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Value, value) {
			t.Errorf("%s value %#v, want %#v", want.FlagKey, got.Value, value)
		}
	}
	var buckets []int
	for _, step := range got.Trace {
		if step.Bucket != nil {
			buckets = append(buckets, int(step.GetBucket()))
		}
	}
	if want.Bucket == nil {
		if len(buckets) > 0 {
			t.Errorf("%s: an unexpected split, buckets %v", want.FlagKey, buckets)
		}
		return
	}
	if !debug {
		t.Fatalf("%s: a vector with a bucket must ask with debug", want.FlagKey)
	}
	if !reflect.DeepEqual(buckets, []int{want.Bucket.Bucket}) {
		t.Errorf("%s: the sidecar's buckets %v, want [%d]", want.FlagKey, buckets, want.Bucket.Bucket)
	}
	// Our own bucket, from the request's value, by the documented rule.
	value := any(user.ID)
	if want.Bucket.By != "$userId" {
		value = user.Context[want.Bucket.By]
	}
	text, ok := flagsidecar.BucketText(value)
	if !ok || text != want.Bucket.Text {
		t.Errorf("%s: BucketText(%#v) = %q, %v; want %q", want.FlagKey, value, text, ok, want.Bucket.Text)
	}
	if bucket, _ := flagsidecar.Bucket(want.FlagKey, value); bucket != want.Bucket.Bucket {
		t.Errorf("%s: Bucket(%#v) = %d, want %d", want.FlagKey, value, bucket, want.Bucket.Bucket)
	}
}
