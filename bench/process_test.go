//go:build bench && linux

package main

import (
	"os"
	"runtime"
	"syscall"
	"testing"
)

// TestThreadSwitches: threadSwitches counts the context switches of every
// thread of a process: 200 blocking reads on a pipe, each answered by
// another thread, add at least 200.
func TestThreadSwitches(t *testing.T) {
	var ping, pong [2]int
	if err := syscall.Pipe(ping[:]); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Pipe(pong[:]); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, fd := range []int{ping[0], ping[1], pong[0], pong[1]} {
			syscall.Close(fd)
		}
	}()
	const rounds = 200
	before := threadSwitches(os.Getpid())
	done := make(chan error)
	go func() {
		// A thread of its own, blocked in read(2) until the other writes:
		// each read is a voluntary switch.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b := make([]byte, 1)
		for range rounds {
			if _, err := syscall.Read(ping[0], b); err != nil {
				done <- err
				return
			}
			if _, err := syscall.Write(pong[1], b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := []byte{1}
	for range rounds {
		if _, err := syscall.Write(ping[1], b); err != nil {
			t.Fatal(err)
		}
		if _, err := syscall.Read(pong[0], b); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := threadSwitches(os.Getpid()) - before; got < rounds {
		t.Fatalf("threadSwitches grew by %d over %d blocking round trips, want at least %d", got, rounds, rounds)
	}
}
