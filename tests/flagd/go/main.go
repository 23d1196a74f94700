// Command flagd-go-client runs OpenFeature's Go flagd provider (go-sdk-contrib/providers/flagd)
// against a running flag-sidecar and prints one JSON report on stdout, in the shape of the Python
// clients' beside it, so that the same assertions check every language.
//
//	rpc --port P --checks checks.json [--flag-file F --changed-file C]
//	in-process --sync-port P --checks checks.json [--selector SEL] [--provider-id ID]
//	           [--flag-file F --changed-file C --changed-flag KEY]
//
// rpc: the provider in RPC mode (the Connect protocol, on the sidecar's --flagd-connect-listen)
// runs clients/checks.json, replaces the flag file, waits for PROVIDER_CONFIGURATION_CHANGED and
// runs its afterChange checks: the report of the other RPC clients (tests/flagd/test_clients.py).
//
// in-process: the provider in in-process mode (SyncFlags on the sync listener) evaluates each
// check; then, with --changed-file, the flag file is replaced and, once the provider reports
// PROVIDER_CONFIGURATION_CHANGED for --changed-flag, that flag's checks run again. The report is
// clients/py_in_process.py's, less the RPC answers, which tests/flagd/test_in_process.py takes
// from the Python provider (the Go provider's RPC mode needs --flagd-connect-listen, which that
// test does not start).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: flagd-go-client rpc|in-process [options]")
		os.Exit(2)
	}
	var report any
	var err error
	switch mode, args := os.Args[1], os.Args[2:]; mode {
	case "rpc":
		report, err = runRPC(args)
	case "in-process":
		report, err = runInProcess(args)
	default:
		err = fmt.Errorf("unknown mode %q (rpc, in-process)", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flagd-go-client:", err)
		os.Exit(1)
	}
	out, err := json.Marshal(report)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flagd-go-client: report:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

// options are the command-line options of both modes (each reads the ones it needs).
type options struct {
	host, checks, selector, providerID string
	flagFile, changedFile, changedFlag string
	syncPort, port                     int
}

func parse(name string, args []string) (options, error) {
	var o options
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	set.StringVar(&o.host, "host", "127.0.0.1", "the sidecar's host")
	set.IntVar(&o.syncPort, "sync-port", 0, "in-process: the sidecar's --sync-listen port")
	set.IntVar(&o.port, "port", 0, "rpc: the sidecar's --flagd-connect-listen port")
	set.StringVar(&o.checks, "checks", "", "the checks (JSON)")
	set.StringVar(&o.selector, "selector", "", "in-process: the flagd selector")
	set.StringVar(&o.providerID, "provider-id", "", "in-process: the SyncFlags provider_id")
	set.StringVar(&o.flagFile, "flag-file", "", "the sidecar's flag file, replaced by --changed-file")
	set.StringVar(&o.changedFile, "changed-file", "", "the flag file after the edit")
	set.StringVar(&o.changedFlag, "changed-flag", "", "in-process: the flag the edit changes")
	if err := set.Parse(args); err != nil {
		return o, err
	}
	if o.checks == "" {
		return o, fmt.Errorf("--checks is required")
	}
	return o, nil
}

// replaceFile swaps the flag file for another as a deploy would: written aside, then renamed over.
func replaceFile(target, source string) error {
	data, err := os.ReadFile(source)
	if err != nil {
		return err
	}
	aside := target + ".edit"
	if err := os.WriteFile(aside, data, 0o644); err != nil {
		return err
	}
	return os.Rename(aside, target)
}
