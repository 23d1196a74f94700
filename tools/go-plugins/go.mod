// The protoc plugins `make proto` runs (buf.gen.yaml), pinned here with their go.sum, so that
// `go install tool` builds the same versions on every machine. Not imported by anything.
module flag-sidecar.local/tools/go-plugins

go 1.25.0

tool (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.2 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
