package cli

// The command line's grammar (issue 19): one table of commands, from
// which both the usage and each command's --help are printed, and a
// parser that takes flags anywhere among the operands
// (`twofactor reset carol totp --config F`).
//
// Why not spf13/cobra: the host has eleven commands with a handful of
// flags each, and the standard flag package already parses each one; what
// it lacks is flags after operands and a help that names the operands,
// which the forty lines below add. Cobra would add two modules (cobra,
// pflag) to a security product's dependency tree, change every flag's
// spelling rules (pflag's -x vs --x), and bring shell completion and
// generated docs nobody asked for.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// operand is one positional argument of a command, for its help.
type operand struct{ name, meaning string }

// command is one subcommand: its flags and operands as the usage shows
// them, what it does, and its operands explained.
type command struct {
	name, synopsis, summary string
	operands                []operand
}

var commands = []command{
	{"serve", "--config FILE [--listen ADDR]", "run the HTTP service", nil},
	{"init", "--config FILE [--plugins-dir DIR] [--pin]", "create the store; first write a config with fresh keys if FILE does not exist (--pin: pin each provider binary's sha256)", nil},
	{"providers", "--config FILE", "start each provider and show its health", nil},
	{"doctor", "--config FILE [--json]", "check config, keys, listen port, storage, providers and clocks; say what to fix", nil},
	{"reset", "--config FILE USER PROVIDER", "remove a user's enrollment (lost device)",
		[]operand{{"USER", "the host application's user id"}, {"PROVIDER", "the provider whose enrollment to remove, e.g. totp"}}},
	{"unlock", "--config FILE USER", "end a user's lockout, keeping their factors (audited)",
		[]operand{{"USER", "the host application's user id"}}},
	{"digest", "--config FILE PROVIDER", "print the sha256 to pin a provider binary with",
		[]operand{{"PROVIDER", "the provider's name: its binary is twofactor-provider-PROVIDER in plugins.dir"}}},
	{"rekey", "--config FILE [--progress N]", "re-encrypt all data (enrollments, remembered devices' trust tokens) under encryption_key (after a rotation)", nil},
	{"keygen", "", "print a fresh random key (32 bytes, base64) for encryption_key or an API key", nil},
	{"import", "--config FILE [--format csv|jsonl] [--batch N] [--dry-run] [--skip-existing] SECRETS-FILE", "import existing TOTP secrets (CSV or JSON Lines: user,secret[,digits,period,algorithm])",
		[]operand{{"SECRETS-FILE", "the file to import; nothing is written unless every line is good and no user in it is already enrolled (--skip-existing: those are skipped)"}}},
	{"version", "", "print the release and the revision this binary was built from", nil},
}

func commandNamed(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// writeUsage prints the list of commands.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "twofactor: a pluggable two-factor authentication host\n\nUsage:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  twofactor %s %s\t%s\n", c.name, c.synopsis, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nFlags may come before or after the operands. twofactor COMMAND --help explains one command.\n")
}

// writeHelp prints one command's help: synopsis, operands, flags.
func writeHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: twofactor %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
	if len(c.operands) > 0 {
		fmt.Fprint(w, "\nArguments:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, o := range c.operands {
			fmt.Fprintf(tw, "  %s\t%s\n", o.name, o.meaning)
		}
		tw.Flush()
	}
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
}

// errHelp is a --help that was answered: exit 0.
var errHelp = errors.New("help printed")

// usageError is a command line the grammar refuses: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseArgs parses a command's flags wherever they are among its
// operands, and leaves the operands in fs.Args(). "--" ends the flags:
// what follows is operands even if it starts with "-". -h, -help and
// --help print the command's help to help and return errHelp.
func parseArgs(fs *flag.FlagSet, args []string, help io.Writer) error {
	fs.SetOutput(io.Discard) // errors are returned, and printed once by Main
	var operands []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c, _ := commandNamed(fs.Name())
			writeHelp(help, c, fs)
			return errHelp
		}
		if err != nil {
			return &usageError{fmt.Sprintf("%s: %v (twofactor %s --help lists its flags)", fs.Name(), err, fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// Parse stops at the first operand, or just after a "--".
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			operands = append(operands, rest...)
			break
		}
		operands, args = append(operands, rest[0]), rest[1:]
	}
	// Parse again with only the operands, after "--", so that fs.Args()
	// is exactly them; flag values already set stay.
	return fs.Parse(append([]string{"--"}, operands...))
}

// wantOperands refuses a command line with another number of operands
// than the command takes.
func wantOperands(fs *flag.FlagSet) error {
	c, _ := commandNamed(fs.Name())
	if fs.NArg() == len(c.operands) {
		return nil
	}
	return &usageError{fmt.Sprintf("usage: twofactor %s %s (got %d operand(s): %s)", c.name, c.synopsis, fs.NArg(),
		strings.Join(fs.Args(), " "))}
}

// Progress of a long maintenance command (rekey): every defaultProgressRows
// rows, and at least every progressInterval while rows go by.
const (
	defaultProgressRows = 10000
	progressInterval    = 5 * time.Second
)

// progressPrinter returns a progress callback that prints a line when
// every more rows of a phase (enrollments, then trust tokens, each
// counted from 0) have been read since the last line, or interval has
// passed; every 0 prints nothing. Each line names what it counts.
func progressPrinter(w io.Writer, every int, interval time.Duration, now func() time.Time) func(phase framework.RekeyPhase, scanned, resealed int) {
	if every == 0 {
		return nil
	}
	lastPhase, lastRows, lastAt := framework.RekeyEnrollments, 0, now()
	return func(phase framework.RekeyPhase, scanned, resealed int) {
		if phase != lastPhase {
			lastPhase, lastRows = phase, 0
		}
		if scanned-lastRows < every && now().Sub(lastAt) < interval {
			return
		}
		lastRows, lastAt = scanned, now()
		what := "enrollment(s)"
		if phase == framework.RekeyTrustTokens {
			what = "remembered device trust token(s)"
		}
		fmt.Fprintf(w, "rekey: %d %s read, %d re-encrypted so far\n", scanned, what, resealed)
	}
}
