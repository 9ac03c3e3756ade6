package api

import "github.com/twofactor/twofactor/framework"

// audienceAlias is the config's old word for the client audience. The API
// says "client" (and stores it); a host application that copied the word
// from a config file ("clients") is understood rather than refused, and
// the audience is stored as "client" all the same (issue 19). Any other
// value goes on to the framework, which refuses it naming both audiences.
const audienceAlias = "clients"

// audienceOf reads the audience field of an API request.
func audienceOf(s string) framework.Audience {
	if s == audienceAlias {
		return framework.AudienceClient
	}
	return framework.Audience(s)
}
