package api

// Ending a user's lockout, by an admin: POST /v1/users/{user}/unlock
// (admin scope), as `twofactor unlock` does (host/cli). Both go through
// framework.Unlock, which audits it as event "unlock".

import (
	"net/http"
)

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.Unlock(r.Context(), r.PathValue("user")); err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
