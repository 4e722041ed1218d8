package jsonscan

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// walk reads one flat object of scalars and returns its keys and values
// as text, the way the decoder walks a record.
func walk(t *testing.T, s *Scanner) (map[string]string, error) {
	t.Helper()
	got := map[string]string{}
	more, err := s.OpenObject("at the start")
	for err == nil && more {
		var key []byte
		if key, err = s.Key("in the object"); err != nil {
			break
		}
		k := string(key)
		var c byte
		if c, err = s.Peek("before a value"); err != nil {
			break
		}
		switch {
		case c == '"':
			var v []byte
			v, err = s.ReadString()
			got[k] = string(v)
		case c == '-' || IsDigit(c):
			var v []byte
			v, err = s.ReadNumber()
			got[k] = string(v)
		case c == '[' || c == '{':
			err = s.SkipValue(1)
			got[k] = "(skipped)"
		default:
			var lit byte
			lit, err = s.ReadLiteral()
			got[k] = string(lit)
		}
		if err == nil {
			more, err = s.Next('}', "in the object")
		}
	}
	if err == nil {
		var eof bool
		if eof, err = s.AtEOF(); err == nil && !eof {
			err = s.Errorf("data after the object")
		}
	}
	return got, err
}

func TestScanner(t *testing.T) {
	const doc = `{"s":"a\u00e9\"b","n":-12.5e3,"t":true,"z":null,"deep":[[{"x":[1,2]}],"y"],"u":"\ud83d\ude00"}`
	want := map[string]string{"s": `aé"b`, "n": "-12.5e3", "t": "t", "z": "n", "deep": "(skipped)", "u": "😀"}
	// White space between every token, as a pretty-printer writes it.
	spaced := strings.NewReplacer("{", " {\n\t", ":", " : ", ",", "\r\n,\t", "}", "\n}").Replace(doc)
	// One byte at a time too: every token may cross a buffer's end.
	for _, r := range []io.Reader{strings.NewReader(doc), iotest.OneByteReader(strings.NewReader(doc)),
		strings.NewReader(spaced), iotest.OneByteReader(strings.NewReader(spaced))} {
		got, err := walk(t, New(r, 1<<20, 1<<10))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	}
}

func TestScannerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		maxInput  int64
		maxString int
		want      error
		kind      string // FailureKind
		truncated bool
	}{
		{name: "cut in a string", doc: `{"s":"abc`, want: &SyntaxError{}, kind: "reset", truncated: true},
		{name: "bad character", doc: `{"s":x}`, want: &SyntaxError{}, kind: "bad_json"},
		{name: "bad number", doc: `{"n":01}`, want: &SyntaxError{}, kind: "bad_json"},
		{name: "input past the cap", doc: `{"s":"` + strings.Repeat("a", 100) + `"}`, maxInput: 50, want: ErrInputTooLarge, kind: "too_large"},
		{name: "value past the cap", doc: `{"s":"` + strings.Repeat("a", 100) + `"}`, maxString: 10, want: ErrValueTooLong, kind: "too_large"},
		{name: "too deep", doc: `{"d":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, want: &SyntaxError{}, kind: "bad_json"},
		{name: "trailing data", doc: `{} {}`, want: &SyntaxError{}, kind: "bad_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxInput, maxString := int64(1<<20), 1<<10
			if tc.maxInput > 0 {
				maxInput = tc.maxInput
			}
			if tc.maxString > 0 {
				maxString = tc.maxString
			}
			_, err := walk(t, New(strings.NewReader(tc.doc), maxInput, maxString))
			var se *SyntaxError
			switch want := tc.want.(type) {
			case *SyntaxError:
				if !errors.As(err, &se) || se.Truncated != tc.truncated {
					t.Fatalf("error %v, want a SyntaxError (truncated %v)", err, tc.truncated)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
			var kinded interface{ FailureKind() string }
			if !errors.As(err, &kinded) || kinded.FailureKind() != tc.kind {
				t.Errorf("error %v has failure kind %v, want %s", err, kinded, tc.kind)
			}
		})
	}
}

// ErrValueTooLong leaves the scanner after the value, wherever the value
// ends: in the buffer, in a later read, or after escapes.
func TestValueTooLongIsSkipped(t *testing.T) {
	long := strings.Repeat("a", 100)
	doc := `{"s":"` + long + `","e":"\n\u00e9` + long + `","x":"` + strings.Repeat("\xff", 30) + `","n":1` + strings.Repeat("0", 100) + `,"ok":"yes"}`
	for _, r := range []struct {
		name string
		r    io.Reader
	}{{"whole", strings.NewReader(doc)}, {"a byte a read", iotest.OneByteReader(strings.NewReader(doc))}} {
		t.Run(r.name, func(t *testing.T) {
			s := New(r.r, 1<<20, 50)
			if _, err := s.OpenObject("at the start"); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"s", "e", "x", "n"} {
				if k, err := s.Key("in the object"); err != nil || string(k) != key {
					t.Fatalf("key %q (%v), want %q", k, err, key)
				}
				var err error
				if key == "n" {
					_, err = s.ReadNumber()
				} else {
					s.Peek("before a value")
					_, err = s.ReadString()
				}
				if !errors.Is(err, ErrValueTooLong) {
					t.Fatalf("%s: error %v, want ErrValueTooLong", key, err)
				}
				if more, err := s.Next('}', "in the object"); !more || err != nil {
					t.Fatalf("after %s: more %v, error %v", key, more, err)
				}
			}
			if k, err := s.Key("in the object"); err != nil || string(k) != "ok" {
				t.Fatalf("key %q (%v), want ok", k, err)
			}
		})
	}
}

// ReadString reads a string as encoding/json does, wherever in it the
// byte that ends its plain run (a quote, an escape, a control byte) or a
// byte past ASCII stands: eight bytes are scanned at a time, so every
// position in a word and past it is tried, and so is a string of plain
// bytes that ends in a later read.
func TestReadStringAtEveryPosition(t *testing.T) {
	specials := []string{`\"`, `\\`, `\n`, `\u00e9`, "\x01", "\x1f", "\x7f", "é", "\xff", "\xe9a", "\u00e9\xff"}
	for _, special := range specials {
		for before := range 20 {
			for _, after := range []int{0, 3, 11} {
				body := strings.Repeat("a", before) + special + strings.Repeat("b", after)
				doc := `"` + body + `"` + " "
				var want string
				wantErr := json.Unmarshal([]byte(doc), &want) != nil
				for _, r := range []io.Reader{strings.NewReader(doc), iotest.HalfReader(strings.NewReader(doc))} {
					s := New(r, 1<<20, 1<<10)
					if _, err := s.Peek("before a value"); err != nil {
						t.Fatal(err)
					}
					got, err := s.ReadString()
					if wantErr {
						if err == nil {
							t.Errorf("%q: read %q, want an error", doc, got)
						}
						continue
					}
					if err != nil || string(got) != want {
						t.Errorf("%q: read %q (%v), want %q", doc, got, err, want)
					}
					if off := s.Offset(); off != int64(len(doc)-1) {
						t.Errorf("%q: offset %d after the string, want %d", doc, off, len(doc)-1)
					}
				}
			}
		}
	}
}
