package main

import (
	"fmt"
	"time"

	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
)

// spec is clients/checks.json: the checks, the ones run again after the edit, the flag it changes.
type spec struct {
	Checks      []Check `json:"checks"`
	AfterChange []Check `json:"afterChange"`
	ChangedFlag string  `json:"changedFlag"`
}

// rpcReport is the report of the Python, Node and Java RPC clients (tests/flagd/test_clients.py).
type rpcReport struct {
	Client               string             `json:"client"`
	Ready                bool               `json:"ready"`
	ReadySeconds         float64            `json:"readySeconds"`
	Seconds              map[string]float64 `json:"seconds"`
	Results              map[string]Result  `json:"results"`
	ConfigurationChanged bool               `json:"configurationChanged"`
	FlagsChanged         []string           `json:"flagsChanged"`
	AfterChange          map[string]Result  `json:"afterChange"`
}

// runRPC: the provider in RPC mode, which speaks the Connect protocol over HTTP/1.1 (connect-go)
// to flagd.evaluation.v2, against the sidecar's --flagd-connect-listen port.
func runRPC(args []string) (any, error) {
	o, err := parse("rpc", args)
	if err != nil {
		return nil, err
	}
	if o.port == 0 {
		return nil, fmt.Errorf("rpc needs --port")
	}
	var checks spec
	if err := readJSON(o.checks, &checks); err != nil {
		return nil, err
	}
	provider, err := flagd.NewProvider(
		flagd.WithRPCResolver(),
		flagd.WithHost(o.host),
		flagd.WithPort(uint16(o.port)),
		// As the Node client's: an answer the provider retried to its deadline would show in Seconds.
		flagd.WithDeadline(5000),
		flagd.WithRetryBackoffMs(100),
		flagd.WithRetryBackoffMaxMs(500),
		flagd.WithRetryGracePeriod(2),
	)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	if err := openfeature.SetNamedProviderAndWait("rpc", provider); err != nil {
		return nil, err
	}
	defer openfeature.Shutdown()
	client := openfeature.NewClient("rpc")
	seen := newChanges(checks.ChangedFlag)
	client.AddHandler(openfeature.ProviderConfigChange, seen.handler())

	report := rpcReport{Client: "go", Seconds: map[string]float64{}}
	report.Ready = waitReady(client, 10*time.Second)
	report.ReadySeconds = time.Since(started).Seconds()
	if !report.Ready {
		return report, nil
	}
	all := func(checks []Check, seconds map[string]float64) (map[string]Result, error) {
		results := make(map[string]Result, len(checks))
		for _, check := range checks {
			began := time.Now()
			result, err := evaluate(client, check)
			if err != nil {
				return nil, err
			}
			results[check.Name] = result
			if seconds != nil {
				seconds[check.Name] = time.Since(began).Seconds()
			}
		}
		return results, nil
	}
	if report.Results, err = all(checks.Checks, report.Seconds); err != nil {
		return nil, err
	}
	if o.changedFile != "" {
		if err := replaceFile(o.flagFile, o.changedFile); err != nil {
			return nil, err
		}
		report.ConfigurationChanged = seen.wait(10 * time.Second)
		report.FlagsChanged = seen.sorted()
		if report.AfterChange, err = all(checks.AfterChange, nil); err != nil {
			return nil, err
		}
	}
	return report, nil
}
