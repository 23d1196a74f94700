package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// Check is one evaluation: a flag read as a type with a default and a context.
type Check struct {
	Name         string         `json:"name"`
	Type         string         `json:"type"` // boolean|string|integer|float|object
	Flag         string         `json:"flag"`
	Default      any            `json:"default"`
	TargetingKey *string        `json:"targetingKey"`
	Context      map[string]any `json:"context"`
}

// Result is what the caller sees, in the shape every client of tests/flagd reports.
type Result struct {
	Value     any     `json:"value"`
	Reason    string  `json:"reason"`
	Variant   *string `json:"variant"`
	ErrorCode *string `json:"errorCode"`
}

func readJSON(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

func evaluate(client *openfeature.Client, check Check) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := ""
	if check.TargetingKey != nil {
		key = *check.TargetingKey
	}
	evalCtx := openfeature.NewEvaluationContext(key, check.Context)
	var detail openfeature.ResolutionDetail
	var value any
	// The error is the same as detail's error code (the SDK hands back the default with it).
	switch check.Type {
	case "boolean":
		fallback, _ := check.Default.(bool)
		details, _ := client.BooleanValueDetails(ctx, check.Flag, fallback, evalCtx)
		value, detail = details.Value, details.ResolutionDetail
	case "string":
		fallback, _ := check.Default.(string)
		details, _ := client.StringValueDetails(ctx, check.Flag, fallback, evalCtx)
		value, detail = details.Value, details.ResolutionDetail
	case "integer":
		fallback, _ := check.Default.(float64)
		details, _ := client.IntValueDetails(ctx, check.Flag, int64(fallback), evalCtx)
		value, detail = details.Value, details.ResolutionDetail
	case "float":
		fallback, _ := check.Default.(float64)
		details, _ := client.FloatValueDetails(ctx, check.Flag, fallback, evalCtx)
		value, detail = details.Value, details.ResolutionDetail
	case "object":
		details, _ := client.ObjectValueDetails(ctx, check.Flag, check.Default, evalCtx)
		value, detail = details.Value, details.ResolutionDetail
	default:
		return Result{}, fmt.Errorf("check %q: unknown type %q", check.Name, check.Type)
	}
	result := Result{Value: value, Reason: string(detail.Reason)}
	if detail.Variant != "" {
		result.Variant = &detail.Variant
	}
	if detail.ErrorCode != "" {
		code := string(detail.ErrorCode)
		result.ErrorCode = &code
	}
	return result, nil
}

// waitReady polls the client's state: a provider that never becomes ready (a refused selector)
// is reported as such instead of blocking.
func waitReady(client *openfeature.Client, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if client.State() == openfeature.ReadyState {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
