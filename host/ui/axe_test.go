package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Every page a browser test sees is checked with axe-core (Deque's
// accessibility engine, from the npm registry, pinned in the Makefile and
// installed by `make test` under bin/npm), in the light and the dark
// colour scheme: a serious or critical violation fails the test. The
// script is injected through the DevTools protocol, so the pages' strict
// Content-Security-Policy stays as it is.

// axePath is where `make test` installs axe-core; AXE_CORE_JS overrides it.
func axePath(t *testing.T) string {
	if p := os.Getenv("AXE_CORE_JS"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil {
			return filepath.Join(dir, "bin", "npm", "node_modules", "axe-core", "axe.min.js")
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no Makefile above the test's folder")
		}
	}
}

// axeScript reads axe-core, or skips the test: `make test` installs it, and
// CI always runs `make test`, so there a missing script is a failure.
func axeScript(t *testing.T) string {
	t.Helper()
	path := axePath(t)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is not installed at %s; make test installs it", path)
		}
		t.Skipf("browser test skipped: axe-core is not installed (%s); `make test` (or `make axe`) installs it", path)
	}
	return string(b)
}

// axeRun runs axe on the page (WCAG 2.x A and AA rules and Deque's best
// practices) and returns the serious and critical violations, one line
// each.
const axeRun = `(async () => {
  const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}, resultTypes: ["violations"]});
  return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
    v.impact + " " + v.id + ": " + v.help + " — " + v.nodes.slice(0, 3).map(n => n.target.join(" ") + " (" + (n.failureSummary || "").replace(/\s+/g, " ") + ")").join("; "));
})()`

// colorScheme emulates prefers-color-scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// media emulates a media type ("print"), or none.
func media(m string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m,
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}})
		return err
	})
}

// a11y checks the current page with axe in both colour schemes, and saves
// a screenshot of the dark one.
func (b *browser) a11y(name string) {
	b.t.Helper()
	if loaded := run(b, "axe loaded?", chromedp.Evaluate[bool](`typeof window.axe !== "undefined"`)); !loaded {
		b.do("inject axe-core", chromedp.Evaluate[chromedp.Void](b.axe))
	}
	for _, scheme := range []string{"dark", "light"} { // light last: the page as it was
		b.do("color scheme "+scheme, colorScheme(scheme))
		// Colours change at once, but the buttons' backgrounds ease in:
		// wait for the transitions to end, or axe reads a mix of themes.
		b.waitJS("transitions done", `document.getAnimations().every(a => !(a instanceof CSSTransition) || a.playState !== "running")`, 5*time.Second)
		found := run(b, "axe on "+name, chromedp.Evaluate[[]string](axeRun, chromedp.EvalAwaitPromise))
		for _, v := range found {
			b.t.Errorf("axe-core, %s page, %s scheme (%s): %s", name, scheme, b.location(), v)
		}
		if scheme == "dark" {
			b.capture(name + "-dark")
		}
	}
	b.checked = append(b.checked, name)
}

func (b *browser) location() string {
	loc := run(b, "location", chromedp.Location())
	if i := strings.Index(loc, "?"); i >= 0 {
		loc = loc[:i] // tokens are long and say nothing here
	}
	return loc
}

// width sets the viewport's width in CSS pixels (a phone is 390; mobile
// also emulates a touch screen without a mouse).
func (b *browser) width(w int64, mobile bool) {
	b.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	b.do(fmt.Sprintf("width %d", w), chromedp.EmulateViewport(w, 844, opts...))
}

// overflow lists the elements wider than their box on the page (a table
// cut off, a line that does not wrap), or the page itself.
func (b *browser) overflow() []string {
	b.t.Helper()
	return run(b, "overflow", chromedp.Evaluate[[]string](`(() => {
  const out = [];
  const de = document.documentElement;
  if (de.scrollWidth > de.clientWidth) out.push("the page: " + de.scrollWidth + " > " + de.clientWidth);
  for (const el of document.querySelectorAll("body *")) {
    const s = getComputedStyle(el);
    // Hidden, or visually hidden for screen readers (clipped to a pixel).
    if (s.display === "none" || el.closest(".visually-hidden") || el.clientWidth <= 1) continue;
    if ((s.overflowX === "auto" || s.overflowX === "scroll" || s.overflowX === "hidden") && el.scrollWidth > el.clientWidth + 1)
      out.push((el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + el.className) + ": " + el.scrollWidth + " > " + el.clientWidth);
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > de.clientWidth + 1 || r.left < -1))
      out.push((el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + el.className) + " reaches " + Math.round(r.left) + ".." + Math.round(r.right) + " of " + de.clientWidth);
  }
  return out;
})()`))
}
