// Command example calls a flag-sidecar serving examples/flags.yaml (`make run`):
// go run ./cmd/example [target], where target is host:port or unix:///path.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	flagsidecar "github.com/flag-sidecar/flag-sidecar/clients/go"
)

func main() {
	target := "127.0.0.1:50051" // or "unix:///run/flag-sidecar/grpc.sock"
	if len(os.Args) > 1 {
		target = os.Args[1]
	}
	if err := run(context.Background(), target); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, target string) error {
	// Every call gets a deadline of flagsidecar.DefaultTimeout unless ctx has one
	// (flagsidecar.WithTimeout changes it).
	client, err := flagsidecar.Dial(target)
	if err != nil {
		return err
	}
	defer client.Close()
	user := flagsidecar.User{ID: "u1", Context: map[string]any{"plan": "pro", "accountId": "acct-42"}}

	answer, err := client.Evaluate(ctx, "new-checkout", user)
	if err != nil {
		return err
	}
	fmt.Println(answer.Variant, answer.Value, answer.Reason)

	// The bucket the split put acct-42 in, computed here as the sidecar does.
	bucket, _ := flagsidecar.Bucket("new-checkout", user.Context["accountId"])
	fmt.Println("bucket", bucket)

	everything, err := client.EvaluateAll(ctx, user)
	if err != nil {
		return err
	}
	for _, evaluation := range everything {
		fmt.Println(evaluation.FlagKey, evaluation.Variant)
	}

	_, err = client.Evaluate(ctx, "no-such-flag", user)
	if errors.Is(err, flagsidecar.ErrFlagNotFound) {
		fmt.Println("not found:", err)
	} else if err != nil {
		return err
	}

	accepted, err := client.Track(ctx, flagsidecar.Event{
		Name: "checkout-completed", User: user, Details: map[string]any{"value": 42.5},
	})
	if err != nil {
		return err
	}
	fmt.Println("tracked", accepted)
	return nil
}
