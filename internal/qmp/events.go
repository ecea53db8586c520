package qmp

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// maxQueuedEvents bounds the unread events of one subscription.
const maxQueuedEvents = 10000

// Event is an asynchronous QMP event, e.g. BLOCK_JOB_CANCELLED.
type Event struct {
	Name string          // "event"
	Data json.RawMessage // "data", nil when absent
	Time time.Time       // "timestamp" (QEMU's clock)
}

// Decode unmarshals the event data into v.
func (e Event) Decode(v any) error {
	if e.Data == nil {
		return fmt.Errorf("qmp: event %s has no data", e.Name)
	}
	return json.Unmarshal(e.Data, v)
}

// Field returns a string member of the event data ("" when absent or not a
// string), e.g. Field("id") of BLOCK_EXPORT_DELETED or Field("device") of
// BLOCK_JOB_CANCELLED.
func (e Event) Field(name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(e.Data, &m) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(m[name], &s) != nil {
		return ""
	}
	return s
}

// MatchField returns a matcher for events whose data member name is value.
func MatchField(name, value string) func(Event) bool {
	return func(e Event) bool { return e.Field(name) == value }
}

// Subscription queues the events a client receives from the moment
// Subscribe returns, so none is lost while a triggering command runs. The
// queue holds up to maxQueuedEvents unread events.
type Subscription struct {
	c      *Client
	names  map[string]bool // nil: every event
	notify chan struct{}   // capacity 1: "queue or err changed"

	mu    sync.Mutex
	queue []Event
	err   error // set when the subscription ends
}

// Subscribe starts queueing the named events (every event when no name is
// given). Close the subscription when done with it.
func (c *Client) Subscribe(names ...string) *Subscription {
	s := &Subscription{c: c, notify: make(chan struct{}, 1)}
	if len(names) > 0 {
		s.names = make(map[string]bool, len(names))
		for _, n := range names {
			s.names[n] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		s.end(c.err)
	} else {
		c.subs[s] = struct{}{}
	}
	return s
}

// Close stops queueing; Next then returns ErrClosed once the queue is empty.
func (s *Subscription) Close() {
	s.c.mu.Lock()
	delete(s.c.subs, s)
	s.c.mu.Unlock()
	s.end(ErrClosed)
}

// push queues e. The client's mu is held.
func (s *Subscription) push(e Event) {
	if s.names != nil && !s.names[e.Name] {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if len(s.queue) >= maxQueuedEvents {
		s.err = ErrEventOverflow
	} else {
		s.queue = append(s.queue, e)
	}
	s.wake()
}

// end makes Next fail with err after the queued events.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.wake()
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next returns the oldest queued event, waiting for one until ctx ends. After
// the connection ended it returns the queued events, then the error.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e := s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return e, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Wait returns the first queued or future event called name ("" for any)
// for which match (nil for any) is true, discarding the others.
func (s *Subscription) Wait(ctx context.Context, name string, match func(Event) bool) (Event, error) {
	for {
		e, err := s.Next(ctx)
		if err != nil {
			return Event{}, fmt.Errorf("qmp: waiting for event %s: %w", name, err)
		}
		if (name == "" || e.Name == name) && (match == nil || match(e)) {
			return e, nil
		}
	}
}

// WaitEvent waits for a future event; see Subscription.Wait. Events that
// arrive before the call are not seen: to wait for the effect of a command,
// Subscribe before executing it.
func (c *Client) WaitEvent(ctx context.Context, name string, match func(Event) bool) (Event, error) {
	s := c.Subscribe()
	defer s.Close()
	return s.Wait(ctx, name, match)
}

// Events delivers every event from now on until ctx ends or the connection
// ends; then the channel is closed.
func (c *Client) Events(ctx context.Context) <-chan Event {
	s := c.Subscribe()
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer s.Close()
		for {
			e, err := s.Next(ctx)
			if err != nil {
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
