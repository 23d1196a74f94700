package flagsidecar_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"

	v1 "github.com/flag-sidecar/flag-sidecar/clients/go/gen/flagsidecar/v1"
)

// The Kafka exporter's protobuf payload (format=protobuf) decodes in Go: testdata holds the bytes
// the sidecar's encoder writes (tests/events/test_kafka_payload.py checks they still are), one
// length-prefixed ExportedEvent each, and the JSON form of each event beside them.
func TestExportedEventsDecodeEqualToTheirJSONForm(t *testing.T) {
	binary, err := os.ReadFile(filepath.Join("testdata", "exported_events.bin"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join("testdata", "exported_events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected []map[string]any
	if err := json.Unmarshal(text, &expected); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(bytes.NewReader(binary))
	for i := 0; ; i++ {
		event := &v1.ExportedEvent{}
		err := protodelim.UnmarshalFrom(reader, event)
		if errors.Is(err, io.EOF) {
			if i != len(expected) {
				t.Fatalf("%d events decoded, %d expected", i, len(expected))
			}
			return
		}
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		want := expected[i]
		got := map[string]any{
			"kind":         event.GetKind(),
			"contextKind":  event.GetContextKind(),
			"userKey":      event.GetUserKey(),
			"creationDate": float64(event.GetCreationDate()),
			"key":          event.GetKey(),
			"eventId":      event.GetEventId(),
		}
		if event.GetKind() == "feature" {
			got["variation"] = event.GetVariation()
			got["value"] = event.GetValue().AsInterface()
			got["default"] = event.GetDefault()
			got["version"] = event.GetVersion()
			got["source"] = event.GetSource()
			got["reason"] = event.GetReason().String()
			if event.GetErrorCode() != v1.ErrorCode_ERROR_CODE_UNSPECIFIED {
				got["errorCode"] = event.GetErrorCode().String()
				got["errorMessage"] = event.GetErrorMessage()
			}
		} else {
			got["evaluationContext"] = event.GetEvaluationContext().AsMap()
			got["trackingEventDetails"] = event.GetTrackingEventDetails().AsMap()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %v\nwant %v", i, got, want)
		}
	}
}
