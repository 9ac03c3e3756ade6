package duotest

// ClearFailures removes every injected failure not used up yet (see Fail).
// With it a test switches a lasting fault on and off at moments of its
// choosing: Fail(math.MaxInt, f) to start the outage, ClearFailures to end
// it. Requests already held by a Delay keep waiting it out (or until their
// client gives up); requests arriving afterwards are answered normally.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	s.fails = nil
	s.mu.Unlock()
}
