package flagsidecar_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// docs/clients/go.md shows cmd/example/main.go as it is, and the output it prints against a real
// sidecar serving examples/flags.yaml (as `make run` does), here over a Unix socket.
func TestTheDocsExampleRunsAsShown(t *testing.T) {
	page, err := os.ReadFile("../../docs/clients/go.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```\n\nOutput:\n\n```\n(.*?)```").FindSubmatch(page)
	if blocks == nil {
		t.Fatal("docs/clients/go.md has no Go program followed by its output")
	}
	program, err := os.ReadFile("cmd/example/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(blocks[1]) != string(program) {
		t.Fatal("docs/clients/go.md does not show cmd/example/main.go as it is")
	}
	goCommand, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	binary := filepath.Join(t.TempDir(), "example")
	if output, err := exec.Command(goCommand, "build", "-o", binary, "./cmd/example").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/example: %v\n%s", err, output)
	}
	_, unix := startSidecar(t, "../../examples/flags.yaml")
	output, err := exec.Command(binary, unix).CombinedOutput()
	if err != nil {
		t.Fatalf("the example failed: %v\n%s", err, output)
	}
	if string(output) != string(blocks[2]) {
		t.Fatalf("the example prints\n%s\ndocs/clients/go.md says\n%s", output, blocks[2])
	}
}
