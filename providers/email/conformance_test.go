package email_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/providers/email/emailtest"
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// TestConformance runs the SDK's conformance kit against the provider in
// this process and against the built plugin binary, both sending through
// a real SMTP server; the kit reads each delivered code from it.
func TestConformance(t *testing.T) {
	const addr = "kit@x.example"
	run := func(t *testing.T, target func() providertest.Target) {
		srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
		seen := 0
		opts := providertest.Options{
			EnrollInputs: map[string]string{"email": addr},
			// Each call reads the code of the newest mail, once.
			Delivered: func() (string, error) {
				msgs := srv.Messages()
				if len(msgs) <= seen {
					return "", fmt.Errorf("no new mail (%d delivered)", len(msgs))
				}
				seen = len(msgs)
				return emailtest.CodeOf(msgs[len(msgs)-1]), nil
			},
		}
		providertest.Run(t, target(), settings(srv, sdk.Settings{"smtp_username": "mailer", "smtp_password": "s3cret"}), opts)
	}
	t.Run("in-process", func(t *testing.T) {
		run(t, func() providertest.Target { return providertest.InProcess(email.New()) })
	})
	t.Run("binary", func(t *testing.T) {
		dir, err := testbin.Dir()
		if err != nil {
			t.Fatal(err)
		}
		run(t, func() providertest.Target {
			return providertest.Binary(filepath.Join(dir, "twofactor-provider-email"))
		})
	})
}
