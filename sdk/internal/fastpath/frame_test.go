package fastpath

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"
)

// ReadFrame is on both ends of every Verify: once its body buffer has
// grown to a frame's size, reading another frame costs no allocation.
func TestReadFrameAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		body int
	}{
		{"empty body", 0},
		{"verify-sized", 120},
		{"larger than the read buffer", 6000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := binary.BigEndian.AppendUint32(nil, uint32(1+tc.body))
			frame = append(frame, KindOK)
			frame = append(frame, bytes.Repeat([]byte{7}, tc.body)...)
			src := bytes.NewReader(frame)
			c := &Conn{r: bufio.NewReaderSize(src, 4096)}
			read := func() {
				src.Reset(frame)
				c.r.Reset(src)
				kind, body, err := c.ReadFrame()
				if err != nil || kind != KindOK || len(body) != tc.body {
					t.Fatalf("ReadFrame = %d, %d bytes, %v", kind, len(body), err)
				}
			}
			read() // grows c.in to the body's size
			if n := testing.AllocsPerRun(100, read); n != 0 {
				t.Errorf("ReadFrame allocates %v times a frame, want 0", n)
			}
		})
	}
}
