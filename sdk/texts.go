package sdk

// maxText bounds each of Texts' sentences, in characters; maxTextName
// bounds Texts.Name, which the host puts inside its own sentences.
const (
	maxText     = 300
	maxTextName = 64
)

// Texts are what a host's pages say about a provider: the provider owns
// its advice ("Open Duo Mobile and ..."), the host names no provider. Each
// is plain text, one or two sentences, shown as is (never as HTML). An
// empty field leaves the host's generic words for the kind of factor (a
// code, a push, a code sent to the user), so a plugin built before Texts
// still gets sensible pages. The set is closed: a host shows these and
// nothing else.
type Texts struct {
	// Name is the provider inside a sentence: "your authenticator app",
	// "a code from the email" read "authenticator app", "email".
	Name string
	// Choice describes the provider among the ways to sign in: "A code
	// from an authenticator app on your phone."
	Choice string
	// SignIn is the sign-in page's lead: "Enter the code from your
	// authenticator app." For a provider that sends its code, the lead
	// before a code was sent.
	SignIn string
	// Enroll is the first setup page's lead: what the factor is.
	Enroll string
	// Prepare is the first thing to do before setting up ("Install Duo
	// Mobile on your phone from the App Store or Google Play.").
	Prepare string
	// SetupTitle and Setup are the title and lead of the page that shows
	// what to scan or type (EnrollBegin's Display).
	SetupTitle, Setup string
	// ScanAlt is the text alternative of the QR code that page shows.
	ScanAlt string
	// WrongCode is what that page says when the code does not confirm the
	// setup (ReasonInvalidCode).
	WrongCode string
	// Waiting is what it says while the provider waits for the user to
	// finish elsewhere (ReasonWaiting: an app not activated yet).
	Waiting string
}

// IsZero reports whether t says nothing.
func (t Texts) IsZero() bool { return t == Texts{} }

// Validate reports whether a host can show t: each field valid UTF-8 of
// printable characters, Name at most 64 and the others at most 300. Its
// error is of KindInternal naming the field (texts.sign_in): a provider
// that sends anything else is broken.
func (t Texts) Validate() error {
	fields := []struct {
		name, value string
		limit       int
	}{
		{"name", t.Name, maxTextName}, {"choice", t.Choice, maxText}, {"sign_in", t.SignIn, maxText},
		{"enroll", t.Enroll, maxText}, {"prepare", t.Prepare, maxText}, {"setup_title", t.SetupTitle, maxText},
		{"setup", t.Setup, maxText}, {"scan_alt", t.ScanAlt, maxText}, {"wrong_code", t.WrongCode, maxText},
		{"waiting", t.Waiting, maxText},
	}
	for _, f := range fields {
		if !printableText(f.value, f.limit) {
			return FieldError(KindInternal, "texts."+f.name, "must be valid UTF-8 of at most %d printable characters", f.limit)
		}
	}
	return nil
}
