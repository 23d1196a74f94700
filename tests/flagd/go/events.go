package main

import (
	"slices"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// changes collects the flags of PROVIDER_CONFIGURATION_CHANGED events and says when one came.
type changes struct {
	mu      sync.Mutex
	flags   map[string]bool
	watched string
	seen    chan struct{}
	once    sync.Once
}

func newChanges(watched string) *changes {
	return &changes{flags: map[string]bool{}, watched: watched, seen: make(chan struct{})}
}

func (c *changes) handler() openfeature.EventCallback {
	callback := func(details openfeature.EventDetails) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, key := range details.FlagChanges {
			// The provider's RPC mode (v0.6.0) puts one empty key per changed flag before the keys
			// (make([]string, n), then append), against flagd as against the sidecar.
			if key != "" {
				c.flags[key] = true
			}
		}
		if c.flags[c.watched] {
			c.once.Do(func() { close(c.seen) })
		}
	}
	return &callback
}

func (c *changes) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flags = map[string]bool{}
	c.seen = make(chan struct{})
	c.once = sync.Once{}
}

func (c *changes) wait(within time.Duration) bool {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	select {
	case <-seen:
		return true
	case <-time.After(within):
		return false
	}
}

func (c *changes) sorted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.flags))
	for key := range c.flags {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
