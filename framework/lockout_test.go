package framework

import (
	"testing"
	"time"
)

func TestLockUntilSchedule(t *testing.T) {
	p := DefaultLockoutPolicy
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		failures int
		want     time.Duration // 0: not locked
	}{
		{1, 0}, {4, 0}, {5, 30 * time.Second}, {6, time.Minute}, {7, 2 * time.Minute},
		{11, 32 * time.Minute}, {12, time.Hour}, {50, time.Hour}, {99, time.Hour},
	}
	for _, tt := range tests {
		got := p.lockUntil(now, tt.failures)
		if tt.want == 0 && !got.IsZero() || tt.want != 0 && got.Sub(now) != tt.want {
			t.Errorf("lockUntil(%d) = %v, want +%v", tt.failures, got.Sub(now), tt.want)
		}
	}
	if got := p.lockUntil(now, 100); got.Sub(now) < 50*365*24*time.Hour {
		t.Errorf("100 failures must lock until a reset, got +%v", got.Sub(now))
	}
}
