package clock

import (
	"slices"
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(start)
	var fired []string
	var at []time.Duration
	record := func(name string) func() {
		return func() {
			fired = append(fired, name)
			at = append(at, c.Now().Sub(start))
		}
	}
	c.AfterFunc(3*time.Hour, record("c"))
	c.AfterFunc(time.Hour, record("a"))
	c.AfterFunc(time.Hour, record("b")) // same deadline: in order of arming
	stopped := c.AfterFunc(2*time.Hour, record("never"))
	if !stopped.Stop() {
		t.Error("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Error("second Stop returned true")
	}
	c.Advance(90 * time.Minute)
	if !slices.Equal(fired, []string{"a", "b"}) || c.Now().Sub(start) != 90*time.Minute {
		t.Fatalf("after 90m: fired %v, now +%v", fired, c.Now().Sub(start))
	}
	if c.Pending() != 1 {
		t.Errorf("pending %d", c.Pending())
	}
	c.Advance(24 * time.Hour)
	if !slices.Equal(fired, []string{"a", "b", "c"}) || !slices.Equal(at, []time.Duration{time.Hour, time.Hour, 3 * time.Hour}) {
		t.Errorf("fired %v at %v", fired, at)
	}
}

func TestFakeTimerArmedByATimer(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	n := 0
	var tick func()
	tick = func() {
		n++
		c.AfterFunc(time.Minute, tick)
	}
	c.AfterFunc(time.Minute, tick)
	c.Advance(time.Hour)
	if n != 60 {
		t.Errorf("a self-rearming minute timer fired %d times in an hour", n)
	}
}
