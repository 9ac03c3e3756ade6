package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/twofactor/twofactor/framework"
)

type auditJSON struct {
	ID       int64             `json:"id"`
	Time     time.Time         `json:"time"`
	Event    string            `json:"event"`
	Actor    string            `json:"actor"`
	User     string            `json:"user,omitempty"`
	Provider string            `json:"provider,omitempty"`
	Audience string            `json:"audience,omitempty"`
	Outcome  string            `json:"outcome,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	ClientIP string            `json:"client_ip,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// listAudit pages through the audit log: ?user=ID&since=RFC3339&after=ID&limit=N.
// The answer's next_after is the cursor for the following page.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := framework.AuditQuery{UserID: r.URL.Query().Get("user"), Limit: 100}
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "since must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return
		}
		q.Since = t
	}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "after must be a non-negative integer")
			return
		}
		q.AfterID = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 1000")
			return
		}
		q.Limit = n
	}
	if q.UserID != "" {
		if err := framework.ValidateUserID(q.UserID); err != nil {
			s.writeFrameworkError(w, r, err)
			return
		}
	}
	list, err := s.fw.Audit(r.Context(), q)
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	out := make([]auditJSON, 0, len(list))
	next := q.AfterID
	for _, e := range list {
		out = append(out, auditJSON{ID: e.ID, Time: e.Time, Event: e.Event, Actor: e.Actor, User: e.UserID, Provider: e.Provider,
			Audience: string(e.Audience), Outcome: e.Outcome, Reason: e.Reason, ClientIP: e.ClientIP, Details: e.Details})
		next = e.ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next_after": next})
}
