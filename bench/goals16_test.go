//go:build bench && linux

package main

import "testing"

// TestFmtRatio: a ratio is cut, not rounded, so what is printed at or
// above a goal's line is at or above it.
func TestFmtRatio(t *testing.T) {
	for _, tt := range []struct {
		x      float64
		digits int
		want   string
	}{
		{5868.0 / 29376.0, 3, "0.199"}, // 0.19975: rounding says 0.200, and the goal of 0.2 was missed
		{0.2, 3, "0.200"},
		{0.57, 2, "0.57"}, // 0.57 * 100 is 56.99999… in float64
		{1.1549, 2, "1.15"},
		{0.9999, 2, "0.99"},
		{1, 2, "1.00"},
		{0.15, 3, "0.150"},
	} {
		if got := fmtRatio(tt.x, tt.digits); got != tt.want {
			t.Errorf("fmtRatio(%v, %d) = %s, want %s", tt.x, tt.digits, got, tt.want)
		}
	}
}
