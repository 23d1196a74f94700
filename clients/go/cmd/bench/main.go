// Command bench is the Go load generator of `make bench` (bench/go_caller.py): the same line
// protocol as bench/load.py, so that the harness reads the server's CPU around Go's calls exactly
// as it does around grpcio's.
//
//	go run ./cmd/bench TARGET
//
// Reads one JSON command per line on stdin: {"method", "request" (hex), "calls", "concurrency",
// "warmup"}. For each it makes `warmup` calls, prints {"warm": true} and waits for a line "go",
// then makes `calls` calls from `concurrency` goroutines and prints one JSON line: wall seconds,
// calls, throughput and per-call latency percentiles in microseconds.
//
// Evaluate goes through the public client (flagsidecar.Client.Evaluate), as an application calls
// it: the request's flag key and user are decoded once, and the client builds its message on every
// call. Any other method (the empty RPC of bench/servers.py, which the client does not know) is
// sent as raw bytes with ClientConn.Invoke. One connection serves each kind of call.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	flagsidecar "github.com/flag-sidecar/flag-sidecar/clients/go"
	v1 "github.com/flag-sidecar/flag-sidecar/clients/go/gen/flagsidecar/v1"
)

const evaluateMethod = "/flagsidecar.v1.EvaluationService/Evaluate"

// The deadline of every call, as bench/load.py's: long enough never to end a call under load.
const timeout = 30 * time.Second

type command struct {
	Method      string `json:"method"`
	Request     string `json:"request"`
	Calls       int    `json:"calls"`
	Concurrency int    `json:"concurrency"`
	Warmup      int    `json:"warmup"`
}

type result struct {
	WallS      float64 `json:"wall_s"`
	Calls      int     `json:"calls"`
	Throughput float64 `json:"throughput"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
}

// rawCodec passes bytes through: the empty RPC's request and answer need no protobuf here. Named
// "proto" so that the call's content-type is the usual application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type caller func(ctx context.Context) error

type generator struct {
	target string
	client *flagsidecar.Client
	conn   *grpc.ClientConn
}

func (g *generator) caller(c command) (caller, error) {
	request, err := hex.DecodeString(c.Request)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if c.Method == evaluateMethod {
		var message v1.EvaluateRequest
		if err := proto.Unmarshal(request, &message); err != nil {
			return nil, fmt.Errorf("request: %w", err)
		}
		if g.client == nil {
			if g.client, err = flagsidecar.Dial(g.target, flagsidecar.WithTimeout(timeout)); err != nil {
				return nil, err
			}
		}
		key := message.GetFlagKey()
		user := flagsidecar.User{ID: message.GetUser().GetId(), Context: message.GetUser().GetContext().AsMap()}
		return func(ctx context.Context) error {
			_, err := g.client.Evaluate(ctx, key, user)
			return err
		}, nil
	}
	if g.conn == nil {
		credentials := grpc.WithTransportCredentials(insecure.NewCredentials())
		if g.conn, err = grpc.NewClient(g.target, credentials); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var answer []byte
		return g.conn.Invoke(ctx, c.Method, &request, &answer, grpc.ForceCodec(rawCodec{}))
	}, nil
}

// run makes calls/concurrency calls from each of `concurrency` goroutines, started together.
func run(call caller, calls, concurrency int) (result, error) {
	perWorker := max(1, calls/concurrency)
	latencies := make([][]time.Duration, concurrency)
	errs := make([]error, concurrency)
	start := make(chan struct{})
	var done sync.WaitGroup
	for worker := range concurrency {
		done.Add(1)
		go func() {
			defer done.Done()
			mine := make([]time.Duration, 0, perWorker)
			ctx := context.Background()
			<-start
			for range perWorker {
				began := time.Now()
				if err := call(ctx); err != nil {
					errs[worker] = err
					return
				}
				mine = append(mine, time.Since(began))
			}
			latencies[worker] = mine
		}()
	}
	began := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(began).Seconds()
	var all []time.Duration
	for worker, mine := range latencies {
		if errs[worker] != nil {
			return result{}, errs[worker]
		}
		all = append(all, mine...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	micros := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return result{
		WallS:      wall,
		Calls:      n,
		Throughput: float64(n) / wall,
		P50us:      micros(all[n/2]),
		P99us:      micros(all[min(n-1, int(float64(n)*0.99))]),
	}, nil
}

func serve(target string) error {
	g := &generator{target: target}
	defer func() {
		if g.client != nil {
			g.client.Close()
		}
		if g.conn != nil {
			g.conn.Close()
		}
	}()
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for lines.Scan() {
		if len(lines.Bytes()) == 0 {
			continue
		}
		var c command
		if err := json.Unmarshal(lines.Bytes(), &c); err != nil {
			return fmt.Errorf("command: %w", err)
		}
		if c.Concurrency < 1 {
			return fmt.Errorf("command: concurrency %d", c.Concurrency)
		}
		call, err := g.caller(c)
		if err != nil {
			return err
		}
		if c.Warmup > 0 {
			if _, err := run(call, c.Warmup, c.Concurrency); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
		if err := out.Encode(map[string]bool{"warm": true}); err != nil {
			return err
		}
		if !lines.Scan() || lines.Text() != "go" {
			return lines.Err()
		}
		measured, err := run(call, c.Calls, c.Concurrency)
		if err != nil {
			return err
		}
		if err := out.Encode(measured); err != nil {
			return err
		}
	}
	return lines.Err()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench TARGET")
		os.Exit(2)
	}
	if err := serve(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
