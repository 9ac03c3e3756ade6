package api

import (
	"net/http"
	"time"
)

// ConfigStatus is what GET /v1/config/status shows: the configuration
// running, the file watcher's state and the last change refused. The
// service keeps it; the API only reads it.
type ConfigStatus struct {
	Hash     string
	LoadedAt time.Time
	// Watching: the config file's watcher is armed; WatchError is its last
	// failure (at WatchErrorAt), "" if none.
	Watching     bool
	WatchError   string
	WatchErrorAt time.Time
	// RefusedAt is zero when no change was refused.
	RefusedAt    time.Time
	RefusedError string
	RefusedHash  string
}

// WithConfigStatus serves GET /v1/config/status (admin key) from status,
// which is called once per request.
func WithConfigStatus(status func() ConfigStatus) ServerOption {
	return func(s *Server) { s.status = status }
}

// configStatus answers GET /v1/config/status.
func (s *Server) configStatus(w http.ResponseWriter, _ *http.Request) {
	st := s.status()
	out := map[string]any{"hash": st.Hash, "loaded_at": st.LoadedAt.UTC(), "last_refused": nil}
	watch := map[string]any{"watching": st.Watching, "last_error": nil}
	if st.WatchError != "" {
		watch["last_error"] = map[string]any{"at": st.WatchErrorAt.UTC(), "error": st.WatchError}
	}
	out["watch"] = watch
	if !st.RefusedAt.IsZero() {
		out["last_refused"] = map[string]any{"at": st.RefusedAt.UTC(), "error": st.RefusedError, "hash": st.RefusedHash}
	}
	writeJSON(w, http.StatusOK, out)
}
