// Package flagsidecar is a small Go client for flag-sidecar's native gRPC API
// (flagsidecar.v1: EvaluationService and EventService).
//
//	client, err := flagsidecar.Dial("127.0.0.1:50051") // or "unix:///run/flag-sidecar/grpc.sock"
//	if err != nil { ... }
//	defer client.Close()
//	answer, err := client.Evaluate(ctx, "new-checkout", flagsidecar.User{ID: "u1"})
//	if errors.Is(err, flagsidecar.ErrFlagNotFound) { ... }
//
// Every call gets a deadline (DefaultTimeout, or WithTimeout) unless its context already has one.
// Errors from the sidecar are *Error values that wrap a sentinel (ErrFlagNotFound,
// ErrInvalidArgument, ...) for errors.Is, and keep their gRPC status for status.FromError.
// The generated protobuf code is in the gen/flagsidecar/v1 package, made by `make proto`.
package flagsidecar
