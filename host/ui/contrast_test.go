package ui

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The stylesheet's text colours against their backgrounds, in the light
// and the dark theme: WCAG 2 AA asks 4.5:1 for body text. The test reads
// static/style.css itself: the custom properties of :root (light) and of
// the prefers-color-scheme: dark block, then every rule that sets a text
// colour, a background, or both:
//
//   - color and background in one rule: that pair;
//   - color alone: against the two surfaces text sits on, --card and --bg;
//   - background alone: the inherited --text against it.
//
// Pseudo-elements drawn with content "" (lines, dots) carry no text, and a
// value that is not a plain colour (color-mix, transparent, currentColor,
// none) is left to the browser test's axe-core run.

// nonText are rules whose colours draw no text, with the ratio they need
// instead and why: WCAG 2.1's 1.4.11 asks 3:1 of graphics that carry
// meaning; 0 skips the rule.
var nonText = map[string]struct {
	min float64
	why string
}{
	".qr":         {0, "a white frame around the QR image, which must stay white to scan"},
	".icon-ok":    {3, "an aria-hidden SVG icon beside the page's heading"},
	".icon-error": {3, "an aria-hidden SVG icon beside the page's heading"},
	".icon-lock":  {3, "an aria-hidden SVG icon beside the page's heading"},
	".icon-wait":  {3, "an aria-hidden SVG icon beside the page's heading"},
}

func TestContrast(t *testing.T) {
	css, print := cutBlock(t, readCSS(t), "@media print")
	light, dark := themes(t, css)
	rules := parseRules(css)
	// Printed, the page is black on white whatever the theme.
	for _, r := range parseRules(print) {
		fg, bg := r.decl["color"], r.decl["background"]
		for _, pair := range [][2]string{{fg, bg}, {fg, "#ffffff"}, {"#000000", bg}} {
			if hexRE.MatchString(pair[0]) && hexRE.MatchString(pair[1]) && contrast(t, pair[0], pair[1]) < 4.5 {
				t.Errorf("print: %s: %s on %s is %.2f:1", r.sel, pair[0], pair[1], contrast(t, pair[0], pair[1]))
			}
		}
	}
	if len(rules) < 50 {
		t.Fatalf("only %d rules parsed from style.css", len(rules))
	}
	pairs := 0
	for _, theme := range []struct {
		name string
		vars map[string]string
	}{{"light", light}, {"dark", dark}} {
		resolve := func(v string) (string, bool) {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
			for i := 0; i < 5 && strings.HasPrefix(v, "var("); i++ {
				v = theme.vars[strings.TrimSuffix(strings.TrimPrefix(v, "var("), ")")]
			}
			return v, hexRE.MatchString(v)
		}
		check := func(sel, fg, bg string) {
			f, okf := resolve(fg)
			b, okb := resolve(bg)
			if !okf || !okb {
				return
			}
			pairs++
			want := 4.5
			if n, ok := nonText[sel]; ok {
				want = n.min
			}
			if r := contrast(t, f, b); r < want {
				t.Errorf("%s theme: %s: %s (%s) on %s (%s) is %.2f:1, want at least %.1f:1", theme.name, sel, fg, f, bg, b, r, want)
			}
		}
		for _, r := range rules {
			if strings.Contains(r.sel, "::before") || strings.Contains(r.sel, "::after") || strings.Contains(r.sel, "::placeholder") {
				continue
			}
			if n, ok := nonText[r.sel]; ok && n.min == 0 {
				continue
			}
			fg, bg := r.decl["color"], r.decl["background"]
			if bg == "" {
				bg = r.decl["background-color"]
			}
			switch {
			case fg != "" && bg != "":
				check(r.sel, fg, bg)
			case fg != "":
				check(r.sel, fg, "var(--card)")
				check(r.sel, fg, "var(--bg)")
			case bg != "":
				check(r.sel, "var(--text)", bg)
			}
		}
	}
	if pairs < 60 {
		t.Errorf("only %d colour pairs checked: is the parser still reading style.css?", pairs)
	}
}

// cutBlock takes the block that starts with head (an at-rule) out of css
// and returns both.
func cutBlock(t *testing.T, css, head string) (rest, block string) {
	t.Helper()
	i := strings.Index(css, head)
	if i < 0 {
		t.Fatalf("style.css has no %s block", head)
	}
	open := i + strings.Index(css[i:], "{")
	depth := 0
	for j := open; j < len(css); j++ {
		switch css[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return css[:i] + css[j+1:], css[open+1 : j]
			}
		}
	}
	t.Fatalf("%s block is not closed", head)
	return "", ""
}

var hexRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

func readCSS(t *testing.T) string {
	t.Helper()
	b, err := staticFS.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(b), "")
}

// themes returns the custom properties of the light theme (:root) and of
// the dark one (:root with the dark block's overrides).
func themes(t *testing.T, css string) (light, dark map[string]string) {
	t.Helper()
	light, dark = map[string]string{}, map[string]string{}
	darkAt := strings.Index(css, "@media (prefers-color-scheme: dark)")
	if darkAt < 0 {
		t.Fatal("style.css has no prefers-color-scheme: dark block")
	}
	varRE := regexp.MustCompile(`(--[a-z-]+)\s*:\s*([^;]+);`)
	rootRE := regexp.MustCompile(`(?s):root\s*\{(.*?)\}`)
	roots := rootRE.FindAllStringSubmatchIndex(css, -1)
	for _, m := range roots {
		body := css[m[2]:m[3]]
		for _, v := range varRE.FindAllStringSubmatch(body, -1) {
			if m[0] < darkAt {
				light[v[1]] = strings.TrimSpace(v[2])
			} else {
				dark[v[1]] = strings.TrimSpace(v[2])
			}
		}
	}
	if len(light) < 10 || len(dark) < 10 {
		t.Fatalf("custom properties: %d light, %d dark", len(light), len(dark))
	}
	for k, v := range light {
		if _, ok := dark[k]; !ok {
			dark[k] = v // not overridden: the same in both
		}
	}
	return light, dark
}

type rule struct {
	sel  string
	decl map[string]string
}

// parseRules returns the style rules, those inside @media blocks included
// (with their own selectors), one per selector of a selector list.
func parseRules(css string) []rule {
	var out []rule
	re := regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`)
	for _, m := range re.FindAllStringSubmatch(css, -1) {
		sel := strings.TrimSpace(m[1])
		if i := strings.LastIndex(sel, "{"); i >= 0 {
			sel = strings.TrimSpace(sel[i+1:])
		}
		if strings.HasPrefix(sel, "@") || strings.HasPrefix(sel, ":root") || strings.Contains(sel, "%") || sel == "to" || sel == "from" {
			continue
		}
		decl := map[string]string{}
		for d := range strings.SplitSeq(m[2], ";") {
			k, v, ok := strings.Cut(d, ":")
			if ok {
				decl[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		for s := range strings.SplitSeq(sel, ",") {
			out = append(out, rule{sel: strings.TrimSpace(s), decl: decl})
		}
	}
	return out
}

// contrast is WCAG 2's contrast ratio of two #rgb or #rrggbb colours.
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var c [3]float64
	for i := range c {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("colour %s: %v", hex, err)
		}
		s := float64(v) / 255
		if s <= 0.04045 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}

// TestContrastFormula checks the computation against known ratios.
func TestContrastFormula(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want float64
	}{
		{"#000", "#fff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#767676", "#ffffff", 4.54}, // the lightest grey that passes on white
		{"#4f86f7", "#ffffff", 3.45}, // issue 19's dark-mode button, before
	} {
		if got := contrast(t, tt.a, tt.b); math.Abs(got-tt.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", tt.a, tt.b, got, tt.want)
		}
	}
}
