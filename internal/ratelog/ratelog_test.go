package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

func TestOneLinePerKindPerInterval(t *testing.T) {
	var buf bytes.Buffer
	clk := clock.NewFake(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	r := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), clk)
	for i := 0; i < 1000; i++ {
		r.Warn("flood", "dropped")
		r.Debug("other", "other")
	}
	clk.Advance(Every)
	r.Warn("flood", "dropped")
	got := buf.String()
	if n := strings.Count(got, "msg=dropped"); n != 2 {
		t.Errorf("%d lines of one kind, want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "msg=other"); n != 1 {
		t.Errorf("%d lines of another kind, want 1", n)
	}
	if !strings.Contains(got, "suppressed=999") {
		t.Errorf("the second line does not count the 999 left out:\n%s", got)
	}
}

func TestKindsAreBounded(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	r := New(slog.New(slog.DiscardHandler), clk)
	for i := 0; i < 10*maxKinds; i++ {
		r.Warn(fmt.Sprint(i), "x")
	}
	if len(r.kinds) > maxKinds {
		t.Errorf("%d kinds kept, want at most %d", len(r.kinds), maxKinds)
	}
}
