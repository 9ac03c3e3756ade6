package plugin

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/go-hclog"
)

// pluginLogger is the logger go-plugin gets: it re-emits each line a
// plugin writes to stderr (its hclog JSON, parsed) through it, message
// and field names as the plugin wrote them. hclog's text format (the
// host's default) writes both raw, so a line break in either (a provider
// that logs a backend's error body, or a hostile one) would start a line
// that reads as the host's own. Control characters in them are escaped
// here (as Go quotes them: \n, \r, \x1b; a tab, as in a panic's stack,
// is kept); field values need nothing, as hclog shows a multi-line value
// indented under its key.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, escapeControl(msg), escapeKeys(args)...)
}
func (l pluginLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l pluginLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l pluginLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l pluginLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l pluginLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l pluginLogger) With(args ...any) hclog.Logger {
	return pluginLogger{l.Logger.With(escapeKeys(args)...)}
}
func (l pluginLogger) Named(name string) hclog.Logger {
	return pluginLogger{l.Logger.Named(escapeControl(name))}
}
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	return pluginLogger{l.Logger.ResetNamed(escapeControl(name))}
}

// control is a character escapeControl escapes.
func control(r rune) bool { return r != '\t' && unicode.IsControl(r) }

// escapeControl writes each control character of s as Go quotes it.
func escapeControl(s string) string {
	if strings.IndexFunc(s, control) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if control(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// escapeKeys escapes the field names (even positions) of args.
func escapeKeys(args []any) []any {
	var out []any
	for i := 0; i < len(args); i += 2 {
		k, ok := args[i].(string)
		if !ok || strings.IndexFunc(k, control) < 0 {
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = escapeControl(k)
	}
	if out == nil {
		return args
	}
	return out
}
