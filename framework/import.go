package framework

import (
	"context"
	"errors"
	"fmt"
)

// EventImport is the audit event of one imported batch.
const EventImport = "enrollment.import"

// MaxImportBatch is the most enrollments ImportEnrollments takes at once.
// A batch is one transaction; on SQLite it holds the single writer for
// its whole length, so a running service's verifies wait behind it.
const MaxImportBatch = 10000

// ErrExists means an enrollment for the same user and provider is already
// stored, or appears twice in one batch.
var ErrExists = errors.New("an enrollment exists for this user and provider")

// ExistsError names the enrollment that made a bulk insert fail. It
// matches ErrExists with errors.Is.
type ExistsError struct {
	UserID   string
	Provider string
	// InBatch: the pair appears twice in the batch itself (rather than
	// being stored already).
	InBatch bool
}

func (e *ExistsError) Error() string {
	if e.InBatch {
		return fmt.Sprintf("user %q appears twice for provider %s", e.UserID, e.Provider)
	}
	return fmt.Sprintf("user %q already has a %s enrollment", e.UserID, e.Provider)
}

// Is makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// BulkEnrollmentWriter inserts many enrollments at once, for imports. A
// store implements it beside Store; ImportEnrollments needs it.
type BulkEnrollmentWriter interface {
	// InsertEnrollments stores every enrollment of batch as given (Status,
	// State, CreatedAt, UpdatedAt, ConfirmedAt), each at version 1, in one
	// transaction: all of them or none. A user and provider that are
	// already stored (pending or active), or that appear twice in batch,
	// fail the whole batch with an *ExistsError naming them (errors.Is
	// ErrExists), and nothing of the batch is written. An empty batch
	// writes nothing.
	InsertEnrollments(ctx context.Context, batch []Enrollment) error
	// InsertEnrollmentsAudited is InsertEnrollments that also appends
	// audit, in order, in the same transaction: the batch and its entries
	// are committed together or not at all. A batch with no enrollments
	// writes only the entries; with neither, nothing is written.
	InsertEnrollmentsAudited(ctx context.Context, batch []Enrollment, audit []AuditEntry) error
	// ExistingEnrollments returns those of users (at most MaxImportBatch,
	// each once) that have an enrollment in provider, pending or active,
	// in users' order. It writes nothing.
	ExistingEnrollments(ctx context.Context, provider string, users []string) ([]string, error)
}

// ImportedEnrollment is one user's factor brought from another system: the
// provider's state in the clear, as the provider itself writes it for a
// confirmed enrollment (for TOTP, see providers/totp.ImportState).
type ImportedEnrollment struct {
	UserID string
	State  []byte
}

// ImportOptions changes how ImportEnrollmentsWith treats a batch.
type ImportOptions struct {
	// SkipExisting leaves a user who already has an enrollment in the
	// provider (pending or active) as they are, and imports the rest of
	// the batch: how an import that was interrupted, or that overlaps
	// users enrolled since, is finished. A stored enrollment is never
	// overwritten. Each skipped user is audited (EventImport, outcome
	// "skipped", reason "already_enrolled").
	SkipExisting bool
}

// ImportResult is what ImportEnrollmentsWith wrote.
type ImportResult struct {
	Imported int
	Skipped  []string // users left as they were (SkipExisting), in batch order
}

// ImportEnrollments stores batch as active enrollments of provider, as if
// each user had enrolled and confirmed now: each state is sealed like any
// other (AES-256-GCM under the encryption key, bound to the user and
// provider), and the batch is written in one transaction through the
// store's BulkEnrollmentWriter. It is all or nothing: a user who already
// has an enrollment in provider, or appears twice, fails the batch with an
// *ExistsError, as does a bad user id (with a message naming it and its
// index in batch). Nothing of a failed batch is written.
//
// One audit entry (EventImport) records each batch: the provider, the
// count, and the first and last user id; it is written in the batch's
// transaction, so a batch is stored if and only if it is audited. The
// provider need not be running:
// the state is checked by the caller that built it, and by the provider at
// each verify.
func (f *Framework) ImportEnrollments(ctx context.Context, provider string, batch []ImportedEnrollment) error {
	_, err := f.ImportEnrollmentsWith(ctx, provider, batch, ImportOptions{})
	return err
}

// ImportEnrollmentsWith is ImportEnrollments with options. With
// SkipExisting, the users already enrolled are looked up first and left
// out of the insert; the insert stays all or nothing, so a user enrolled
// between the look-up and the insert fails it, writing nothing, and the
// batch is looked up again and retried (up to maxCASAttempts times).
func (f *Framework) ImportEnrollmentsWith(ctx context.Context, provider string, batch []ImportedEnrollment, opts ImportOptions) (ImportResult, error) {
	if err := checkImportProvider(provider); err != nil {
		return ImportResult{}, err
	}
	if len(batch) > MaxImportBatch {
		return ImportResult{}, errorf(CodeInvalidRequest, nil, "a batch of %d enrollments is over the limit of %d", len(batch), MaxImportBatch)
	}
	if len(batch) == 0 {
		return ImportResult{}, nil
	}
	bulk, err := f.bulkWriter()
	if err != nil {
		return ImportResult{}, err
	}
	now := f.now().UTC()
	rows := make([]Enrollment, len(batch))
	seen := make(map[string]struct{}, len(batch))
	for i, in := range batch {
		if err := ValidateUserID(in.UserID); err != nil {
			return ImportResult{}, fmt.Errorf("import: enrollment %d: %w", i, err)
		}
		if _, dup := seen[in.UserID]; dup {
			return ImportResult{}, fmt.Errorf("import: enrollment %d: %w", i, &ExistsError{UserID: in.UserID, Provider: provider, InBatch: true})
		}
		seen[in.UserID] = struct{}{}
		if len(in.State) == 0 {
			return ImportResult{}, errorf(CodeInvalidRequest, nil, "import: enrollment %d (user %q): empty state", i, in.UserID)
		}
		sealed, err := f.seal.seal(in.UserID, provider, in.State)
		if err != nil {
			return ImportResult{}, err
		}
		rows[i] = Enrollment{
			UserID: in.UserID, Provider: provider, Status: StatusActive, State: sealed,
			CreatedAt: now, UpdatedAt: now, ConfirmedAt: now,
		}
	}
	var res ImportResult
	if opts.SkipExisting {
		res, err = f.insertSkipping(ctx, bulk, provider, rows)
	} else {
		res = ImportResult{Imported: len(rows)}
		err = f.insertAudited(ctx, bulk, provider, rows, rows, res)
	}
	if err != nil {
		return ImportResult{}, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

func checkImportProvider(provider string) error {
	if !providerName.MatchString(provider) {
		return errorf(CodeInvalidRequest, nil, "provider name %q must match %s", provider, providerName)
	}
	if provider == RecoveryProvider {
		return errorf(CodeInvalidRequest, nil, "provider name %q is the host's recovery codes, not a provider", provider)
	}
	return nil
}

func (f *Framework) bulkWriter() (BulkEnrollmentWriter, error) {
	bulk, ok := f.store.(BulkEnrollmentWriter)
	if !ok {
		return nil, fmt.Errorf("the store (%T) cannot insert enrollments in bulk", f.store)
	}
	return bulk, nil
}
