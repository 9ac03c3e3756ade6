package framework

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// Status is the lifecycle state of an enrollment.
type Status string

// Enrollment statuses.
const (
	// StatusPending: begun, not yet confirmed; cannot be used to verify.
	StatusPending Status = "pending"
	// StatusActive: confirmed; used to verify.
	StatusActive Status = "active"
)

// Enrollment is one user's registration with one provider, as stored.
type Enrollment struct {
	UserID   string
	Provider string
	Status   Status
	// State is the provider's opaque state, sealed by the framework
	// (AES-256-GCM, bound to UserID and Provider). Stores never see it in
	// the clear.
	State []byte
	// Version starts at FirstVersion when the row is created and
	// increases by one on every write; Update is compare-and-swap on it.
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ConfirmedAt time.Time // zero while pending
	// Factors records the user's other active factors when this pending
	// enrollment was begun (FactorsStamp); PutPending writes it, and a
	// confirmation that activates the enrollment is refused if a factor
	// not recorded in it is active by then (DecisionWrite.SameFactors).
	// FactorsUnknown on rows written before it was kept.
	Factors string
	// SignInCode is the code the user types to sign in with this
	// enrollment, as its setup said (sdk.Display.SignInCodeInput, checked
	// by the framework); PutPending writes it, stores keep it as
	// EncodeSignInCode's text. Zero on rows written before it was kept,
	// imported ones, and providers whose code follows a setting: the
	// provider's Info.CodeInput is offered then.
	SignInCode sdk.CodeInput
}

// Store errors. Implementations return them (possibly wrapped) so the
// framework can branch with errors.Is.
var (
	ErrNotFound      = errors.New("enrollment not found")
	ErrConflict      = errors.New("enrollment changed concurrently")
	ErrAlreadyActive = errors.New("an active enrollment exists")
	// ErrStoreNotInitialized: Open found no store where one should be (a
	// missing SQLite file), or a store that is empty and was never
	// marked by a Create (init). Opening it anyway would serve every
	// enrolled user as not enrolled: the store silently became empty
	// (a deleted file, a volume not mounted, a wrong DSN). The fix is to
	// restore the backup, or to create the store on purpose.
	ErrStoreNotInitialized = errors.New("no initialized store")
)

// Store persists enrollments and everything else the framework keeps
// (audit log, attempt budgets, recovery codes, host secrets, login policy
// counters, pushes in flight). Every method is atomic on its own; the
// framework builds its guarantees (single use of a code, nothing enrolled
// ever lost) on Update being compare-and-swap and PutPending never touching
// an active enrollment.
type Store interface {
	// PutPending inserts e as a pending enrollment at version 1, or replaces
	// an existing pending one (a restarted enrollment), bumping its version.
	// It returns ErrAlreadyActive, changing nothing, if an active enrollment
	// exists for the same user and provider.
	PutPending(ctx context.Context, e Enrollment) (Enrollment, error)
	// Get returns one enrollment or ErrNotFound.
	Get(ctx context.Context, userID, provider string) (Enrollment, error)
	// List returns a user's enrollments ordered by provider name.
	List(ctx context.Context, userID string) ([]Enrollment, error)
	// Update writes e's Status, State, UpdatedAt and ConfirmedAt if and only
	// if the stored version equals e.Version, and returns the stored result
	// with the version incremented. A version mismatch or a missing row is
	// ErrConflict and changes nothing.
	Update(ctx context.Context, e Enrollment) (Enrollment, error)
	// Delete removes one enrollment; ErrNotFound if there is none.
	Delete(ctx context.Context, userID, provider string) error
	// CountStranded returns how many users have an active enrollment but
	// none in any of the usable providers.
	CountStranded(ctx context.Context, usable []string) (int, error)
	TransactionStore
	PushStore
	DecisionStore
	// The rest of what the framework keeps: every store has all of it, so
	// it is one interface (only BulkEnrollmentWriter stays optional).
	AuditLog
	AttemptStore
	RecoveryStore
	SecretStore
	PolicyStore
	// Close releases the store's resources.
	Close() error
}

// Transaction is an out-of-band verification in flight, such as a Duo push
// waiting for the user's approval. It binds the id the caller polls with
// to the user, provider and audience that started it, so it cannot be
// polled as another user; the provider's own transaction id stays inside.
type Transaction struct {
	ID           string // random, given to the caller
	UserID       string
	Provider     string
	Audience     Audience
	ProviderTxID string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	// ResendAfter is set on a challenge (send.go): from then on, a new
	// challenge replaces this one. Zero for a push, which is never replaced
	// while it is pending.
	ResendAfter time.Time
	// Session is, for a push, SessionKey of the login that started it
	// (StartInput.Session or VerifyInput.Session): a pending push is
	// handed only to a start of the same login (joinPush). "" for a code
	// challenge, which is not bound.
	Session string
}

// TransactionStore reads and ends transactions (PushStore starts them).
// Deleting an enrollment deletes its transactions.
type TransactionStore interface {
	// GetTransaction returns the user's transaction with that id, or
	// ErrNotFound (also when it belongs to another user).
	GetTransaction(ctx context.Context, userID, id string) (Transaction, error)
	// DeleteTransaction removes a transaction; removing one that is gone is
	// not an error.
	DeleteTransaction(ctx context.Context, id string) error
	// TakeTransaction removes a transaction and reports ErrNotFound if it
	// was gone: of simultaneous takes of one transaction, on one host or
	// across replicas, exactly one succeeds. A decided push is taken
	// before its outcome is given, so it is given once.
	TakeTransaction(ctx context.Context, id string) error
	// ExpiredPushes returns, changing nothing, the user's pushes for
	// provider and audience that were sent (a provider transaction id)
	// and expired at now unpolled; challenges (ResendAfter set) are left
	// out. Each stays stored until its settle (SettlePush, or
	// TakeTransaction for a push the provider calls merely expired) ends
	// it: until then it may hold the user's fraud report, and ReservePush
	// reserves nothing (PushReservation.Unsettled).
	ExpiredPushes(ctx context.Context, userID, provider string, aud Audience, now time.Time) ([]Transaction, error)
}

// FirstVersion is the Version a store gives a new enrollment row: random
// in [1, 2^62]. Were every row to start at 1, a row deleted (a reset) and
// created again (the user's new factor) would repeat the versions of the
// old one, and a decision read from the old row before the reset, whose
// compare-and-swap commits after the new row reached the same version,
// would overwrite the new factor with the old one's state (ABA): the lost
// phone back, the new one refused. A chance of 2^-62 per re-enrollment
// that the versions meet is none in practice.
func FirstVersion() int64 { return 1 + rand.Int64N(1<<62) }
