package api

import (
	"net/http"

	"github.com/twofactor/twofactor/framework/config"
)

// public is the scope of a route served without an API key.
const public config.Scope = ""

// route is one line of the route table: what it matches, the key scope it
// needs (public: none) and its handler.
type route struct {
	pattern string
	scope   config.Scope
	h       http.HandlerFunc
}

// routeTable is every route the API serves, in one place (issue 19: they
// were registered in three). A route whose option was not given (metrics,
// config status, the web UI) is left out, not served as an error.
func (s *Server) routeTable() []route {
	app, admin := config.ScopeApp, config.ScopeAdmin
	rs := []route{
		{"GET /healthz", public, s.healthz},
		{"GET /readyz", public, s.readyz},
		{"GET /v1/openapi.json", public, serveOpenAPI},
		{"GET /v1/providers", admin, s.listProviders},
		{"GET /v1/audit", admin, s.listAudit},
		{"POST /v1/users/{user}/enrollments", app, s.beginEnrollment},
		{"POST /v1/users/{user}/enrollments/{provider}/confirm", app, s.confirmEnrollment},
		{"POST /v1/users/{user}/enrollments/{provider}/send", app, s.sendSetupCode},
		{"GET /v1/users/{user}/enrollments", app, s.listEnrollments},
		{"DELETE /v1/users/{user}/enrollments/{provider}", admin, s.resetEnrollment},
		{"GET /v1/users/{user}/enrollments/{provider}/credentials", app, s.listCredentials},
		{"DELETE /v1/users/{user}/enrollments/{provider}/credentials/{credential}", admin, s.removeCredential},
		{"POST /v1/users/{user}/enrollments/{provider}/credentials/{credential}/remove", app, s.removeCredentialStepUp},
		{"POST /v1/users/{user}/enrollments/{provider}/remove", app, s.removeEnrollment},
		{"POST /v1/users/{user}/unlock", admin, s.unlockUser},
		{"POST /v1/users/{user}/verify", app, s.verify},
		{"POST /v1/users/{user}/verifications", app, s.startVerification},
		{"GET /v1/users/{user}/verifications/{txid}", app, s.pollVerification},
		{"POST /v1/users/{user}/recovery-codes", app, s.regenerateRecoveryCodes},
		{"GET /v1/users/{user}/recovery-codes", app, s.recoveryCodesLeft},
		{"POST /v1/users/{user}/challenge", app, s.challenge},
		{"GET /v1/users/{user}/devices", app, s.listDevices},
		{"DELETE /v1/users/{user}/devices", app, s.revokeDevices},
		{"DELETE /v1/users/{user}/devices/{id}", app, s.revokeDevice},
	}
	if s.metrics != nil {
		scope := admin
		if s.metricsPublic {
			scope = public
		}
		rs = append(rs, route{"GET /metrics", scope, s.metrics.ServeHTTP})
	}
	if s.status != nil {
		rs = append(rs, route{"GET /v1/config/status", admin, s.configStatus})
	}
	if l := s.ui; l != nil {
		rs = append(rs,
			route{"POST /v1/users/{user}/ui-links", app, l.create},
			route{"POST /v1/ui-links", admin, l.createAdmin},
			route{"POST /v1/ui-results", app, l.checkResult},
			route{"/ui/", public, l.ui.ServeHTTP})
	}
	return append(rs, route{"/", public, notFound})
}

// notFound answers every path no other route matches, in the API's error
// shape.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path)
}
