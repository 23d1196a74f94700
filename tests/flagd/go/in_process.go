package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// pair is one check's answers; the RPC one is filled in by the test from the Python provider's
// (the Go provider's RPC mode speaks the Connect protocol, which the sidecar does not serve).
type pair struct {
	InProcess Result `json:"inProcess"`
}

type inProcessReport struct {
	Client      string         `json:"client"`
	Ready       bool           `json:"ready"`
	SyncContext map[string]any `json:"syncContext"`
	Results     []pair         `json:"results,omitempty"`
	Changed     *bool          `json:"changed,omitempty"`
	AfterChange []pair         `json:"afterChange,omitempty"`
}

func runInProcess(args []string) (any, error) {
	o, err := parse("in-process", args)
	if err != nil {
		return nil, err
	}
	if o.syncPort == 0 {
		return nil, fmt.Errorf("in-process needs --sync-port")
	}
	var checks []Check
	if err := readJSON(o.checks, &checks); err != nil {
		return nil, err
	}
	local := []flagd.ProviderOption{
		flagd.WithInProcessResolver(),
		flagd.WithHost(o.host),
		flagd.WithPort(uint16(o.syncPort)),
		flagd.WithDeadline(5000),
		flagd.WithRetryBackoffMs(100),
		flagd.WithRetryBackoffMaxMs(500),
		flagd.WithRetryGracePeriod(2),
	}
	if o.selector != "" {
		local = append(local, flagd.WithSelector(o.selector))
	}
	if o.providerID != "" {
		local = append(local, flagd.WithProviderID(o.providerID))
	}
	inProcess, err := flagd.NewProvider(local...)
	if err != nil {
		return nil, err
	}
	if err := openfeature.SetNamedProvider("in-process", inProcess); err != nil {
		return nil, err
	}
	defer openfeature.Shutdown()
	localClient := openfeature.NewClient("in-process")
	seen := newChanges(o.changedFlag)
	localClient.AddHandler(openfeature.ProviderConfigChange, seen.handler())

	report := inProcessReport{Client: "go"}
	report.Ready = waitReady(localClient, 10*time.Second)
	if report.SyncContext, err = syncContext(o); err != nil {
		report.SyncContext = map[string]any{"error": err.Error()}
	}
	if !report.Ready {
		return report, nil
	}
	both := func(checks []Check) ([]pair, error) {
		pairs := make([]pair, 0, len(checks))
		for _, check := range checks {
			l, err := evaluate(localClient, check)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, pair{l})
		}
		return pairs, nil
	}
	if report.Results, err = both(checks); err != nil {
		return nil, err
	}
	if o.changedFile != "" {
		seen.reset() // the first sync reports every flag as changed
		if err := replaceFile(o.flagFile, o.changedFile); err != nil {
			return nil, err
		}
		changed := seen.wait(15 * time.Second)
		report.Changed = &changed
		var again []Check
		for _, check := range checks {
			if check.Flag == o.changedFlag {
				again = append(again, check)
			}
		}
		if report.AfterChange, err = both(again); err != nil {
			return nil, err
		}
	}
	return report, nil
}

// syncContext is the sync_context of the first SyncFlags message for this provider's request
// (the Go provider does not expose it, nor merge it into evaluations: the sidecar inlines its
// --context-value pairs instead; docs/sync.md). It says which flags were left out, and why.
func syncContext(o options) (map[string]any, error) {
	conn, err := grpc.NewClient(
		net.JoinHostPort(o.host, strconv.Itoa(o.syncPort)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o.selector != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "flagd-selector", o.selector)
	}
	stream, err := syncv1grpc.NewFlagSyncServiceClient(conn).SyncFlags(
		ctx, &syncv1.SyncFlagsRequest{ProviderId: o.providerID, Selector: o.selector},
	)
	if err != nil {
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	return first.GetSyncContext().AsMap(), nil
}
