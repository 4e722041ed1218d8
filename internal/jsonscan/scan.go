// Package jsonscan is a streaming JSON tokenizer for large bodies: it
// pulls keys, strings, numbers and literals from an io.Reader through one
// fixed buffer, skips whole values without holding them, and enforces
// limits on the input's size, a value's length and a skipped value's
// depth. It has no idea of a document's meaning: package spoc walks the
// tokens of a body and decides what they are.
package jsonscan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/calee-data/mspo-spoc/internal/failure"
)

// Scanner is a pull tokenizer for JSON over an io.Reader. It keeps one
// fixed-size buffer and returns strings and numbers as slices into that
// buffer (or into a reusable scratch slice when a token crosses a buffer
// boundary or holds escapes), so reading a value allocates nothing. A
// returned slice is valid only until the next call on the Scanner.
//
// It enforces the decoder's limits as it goes: the total input size, the
// length of one string or number, and the nesting depth of skipped values.
type Scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // input offset of buf[0]
	err      error // sticky error from r; io.EOF once the input is drained

	maxInput  int64
	maxString int
	scratch   []byte
}

const (
	scanBufferSize = 256 << 10
	// maxSkipDepth bounds recursion when skipping unknown values, so that
	// a hostile "[[[[..." body yields an error instead of a huge stack.
	maxSkipDepth = 512
)

// Errors of the limits. Each names its failure kind (failure.TooLarge)
// for fetch.Classify, which reads it through FailureKind.
var (
	// ErrInputTooLarge means the input went past maxInput bytes.
	ErrInputTooLarge error = &limitError{"response body too large"}
	// ErrValueTooLong means one string or number went past maxString
	// bytes. Unlike the other errors, it leaves the Scanner after the
	// value, which it skipped without holding, so the caller may go on.
	ErrValueTooLong error = &limitError{"JSON value too long"}
)

type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// FailureKind is failure.TooLarge.
func (e *limitError) FailureKind() string { return failure.TooLarge }

// SyntaxError is malformed or truncated JSON.
type SyntaxError struct {
	Offset    int64 // input byte offset where the problem was found
	Msg       string
	Truncated bool // the input ended cleanly in the middle of the document
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// FailureKind is failure.Reset for an input that ended early (another
// attempt may get all of it), failure.BadJSON otherwise.
func (e *SyntaxError) FailureKind() string {
	if e.Truncated {
		return failure.Reset
	}
	return failure.BadJSON
}

// New returns a Scanner of r that fails past maxInput bytes of input or
// a string or number longer than maxString.
func New(r io.Reader, maxInput int64, maxString int) *Scanner {
	return &Scanner{
		r:         r,
		buf:       make([]byte, scanBufferSize),
		maxInput:  maxInput,
		maxString: maxString,
	}
}

// offset is the input offset of the next unread byte.
func (s *Scanner) Offset() int64 { return s.base + int64(s.pos) }

// Advance consumes the byte Peek returned.
func (s *Scanner) Advance() { s.pos++ }

// fill replaces the consumed buffer with fresh input. It must only be
// called when every buffered byte has been consumed (pos == end).
func (s *Scanner) fill() bool {
	if s.err != nil {
		return false
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	for empty := 0; s.end == 0; empty++ {
		if empty == 100 {
			s.err = io.ErrNoProgress
			return false
		}
		n, err := s.r.Read(s.buf)
		s.end = n
		if s.maxInput > 0 && s.base+int64(n) > s.maxInput {
			s.end = 0
			s.err = fmt.Errorf("%w: more than %d bytes", ErrInputTooLarge, s.maxInput)
			return false
		}
		if err != nil {
			s.err = err
			return n > 0
		}
	}
	return true
}

// more reports whether at least one unread byte is buffered, reading if needed.
func (s *Scanner) more() bool {
	return s.pos < s.end || s.fill()
}

// endError explains why input ended where a byte was expected: a clean end
// of input is a truncated document; anything else is the reader's error.
func (s *Scanner) endError(where string) error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return &SyntaxError{Offset: s.Offset(), Msg: "unexpected end of input " + where, Truncated: true}
	}
	if errors.Is(s.err, ErrInputTooLarge) {
		return s.err
	}
	return fmt.Errorf("read body at offset %d: %w", s.Offset(), s.err)
}

func (s *Scanner) Errorf(format string, args ...any) error {
	return &SyntaxError{Offset: s.Offset(), Msg: fmt.Sprintf(format, args...)}
}

// peek skips white space and returns the next byte without consuming it.
// A body without white space between its tokens, as an API writes it,
// takes the first test, which is small enough to be inlined.
func (s *Scanner) Peek(where string) (byte, error) {
	if s.pos < s.end && s.buf[s.pos] > ' ' {
		return s.buf[s.pos], nil
	}
	return s.skipSpace(where)
}

// skipSpace is Peek past white space or the end of the buffer.
func (s *Scanner) skipSpace(where string) (byte, error) {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.fill() {
			return 0, s.endError(where)
		}
	}
}

// atEOF skips white space and reports whether the input ends there.
func (s *Scanner) AtEOF() (bool, error) {
	_, err := s.Peek("")
	var se *SyntaxError
	if errors.As(err, &se) && se.Truncated {
		return true, nil
	}
	return false, err
}

// expect consumes the next non-space byte, which must be want.
func (s *Scanner) Expect(want byte, where string) error {
	c, err := s.Peek(where)
	if err != nil {
		return err
	}
	if c != want {
		return s.Errorf("expected %q %s, found %s", want, where, QuoteByte(c))
	}
	s.pos++
	return nil
}

// next returns whether the container goes on after a member: it consumes
// the ',' or the closing byte and reports which it was.
func (s *Scanner) Next(closing byte, where string) (bool, error) {
	c, err := s.Peek(where)
	if err != nil {
		return false, err
	}
	switch c {
	case ',':
		s.pos++
		return true, nil
	case closing:
		s.pos++
		return false, nil
	}
	return false, s.Errorf("expected ',' or %q %s, found %s", closing, where, QuoteByte(c))
}

// openObject consumes '{' and reports whether the object has members
// (false means it was "{}" and the '}' is consumed too).
func (s *Scanner) OpenObject(where string) (bool, error) {
	if err := s.Expect('{', where); err != nil {
		return false, err
	}
	c, err := s.Peek(where)
	if err != nil {
		return false, err
	}
	if c == '}' {
		s.pos++
		return false, nil
	}
	return true, nil
}

// key reads an object key and the ':' after it.
func (s *Scanner) Key(where string) ([]byte, error) {
	c, err := s.Peek(where)
	if err != nil {
		return nil, err
	}
	if c != '"' {
		return nil, s.Errorf("expected object key %s, found %s", where, QuoteByte(c))
	}
	k, err := s.ReadString()
	if err != nil {
		return nil, err
	}
	// The key may live in the buffer that peek is about to refill, so look
	// for ':' without refilling when it is already there.
	if s.pos < s.end && s.buf[s.pos] == ':' {
		s.pos++
		return k, nil
	}
	// Rare: white space or a buffer boundary between key and ':'. Keep a
	// copy of the key, because refilling overwrites the buffer.
	k = append(s.scratch[:0:0], k...)
	if err := s.Expect(':', where); err != nil {
		return nil, err
	}
	return k, nil
}

// readString consumes a JSON string (the next byte must be '"') and returns
// its decoded bytes. Invalid UTF-8 and lone surrogates become U+FFFD, as in
// encoding/json.
func (s *Scanner) ReadString() ([]byte, error) {
	s.pos++ // opening quote
	start := s.pos
	buf := s.buf[:s.end]
	// high collects the bytes before the closing quote, to see whether
	// any is past ASCII.
	var high uint64
	i := start
	// Eight bytes at a time while eight are buffered, then byte by byte.
	for ; i+8 <= len(buf); i += 8 {
		w := binary.LittleEndian.Uint64(buf[i:])
		if stop := stringStops(w); stop != 0 {
			n := bits.TrailingZeros64(stop) / 8
			high |= w & (1<<(8*n) - 1)
			i += n
			break
		}
		high |= w
	}
	for ; i < len(buf); i++ {
		c := buf[i]
		if c == '"' {
			str := buf[start:i]
			if len(str) > s.maxString {
				err := s.stringTooLong()
				s.pos = i + 1
				return nil, err
			}
			if high&asciiMask != 0 && !utf8.Valid(str) {
				break
			}
			s.pos = i + 1
			return str, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		high |= uint64(c)
	}
	return s.readStringSlow(start)
}

const (
	lowBits   = 0x0101010101010101
	asciiMask = 0x8080808080808080 // the bit of each byte past ASCII
)

// stringStops has the high bit set in the bytes of w (little-endian) that
// end a string's plain run: '"', '\\' and control bytes. Bits above the
// lowest set one may be false alarms (a borrow carries into the next
// byte), so only the lowest is to be trusted.
func stringStops(w uint64) uint64 {
	quote := w ^ ('"' * lowBits)
	backslash := w ^ ('\\' * lowBits)
	return ((quote-lowBits)&^quote | (backslash-lowBits)&^backslash | (w-0x20*lowBits)&^w) & asciiMask
}

// readStringSlow handles strings with escapes, control bytes, invalid UTF-8
// or a buffer boundary inside them, copying into the scratch slice.
func (s *Scanner) readStringSlow(start int) ([]byte, error) {
	out := s.scratch[:0]
	s.pos = start
	for {
		if !s.more() {
			return nil, s.endError("in string")
		}
		switch c := s.buf[s.pos]; {
		case c == '"':
			s.pos++
			if !utf8.Valid(out) {
				out = replaceInvalidUTF8(out)
				if len(out) > s.maxString {
					return nil, fmt.Errorf("%w: value before offset %d is longer than %d bytes once its invalid UTF-8 is replaced", ErrValueTooLong, s.Offset(), s.maxString)
				}
			}
			s.scratch = out
			return out, nil
		case c == '\\':
			s.pos++
			var err error
			if out, err = s.readEscape(out); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, s.Errorf("control character %s in string", QuoteByte(c))
		default:
			j := s.pos + 1
			for j < s.end {
				if c := s.buf[j]; c == '"' || c == '\\' || c < 0x20 {
					break
				}
				j++
			}
			out = append(out, s.buf[s.pos:j]...)
			s.pos = j
		}
		if len(out) > s.maxString {
			s.scratch = out[:0]
			err := s.stringTooLong()
			if serr := s.skipStringRest(); serr != nil {
				return nil, serr
			}
			return nil, err
		}
	}
}

func (s *Scanner) stringTooLong() error {
	return fmt.Errorf("%w: value at offset %d is longer than %d bytes", ErrValueTooLong, s.Offset(), s.maxString)
}

// readEscape decodes one escape sequence; the backslash is consumed.
func (s *Scanner) readEscape(out []byte) ([]byte, error) {
	if !s.more() {
		return nil, s.endError("in string escape")
	}
	c := s.buf[s.pos]
	s.pos++
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
	default:
		return nil, s.Errorf("invalid escape '\\%c' in string", c)
	}
	r, err := s.readHex4()
	for {
		if err != nil {
			return nil, err
		}
		if !utf16.IsSurrogate(r) {
			return utf8.AppendRune(out, r), nil
		}
		if r >= 0xDC00 { // a low surrogate with no high one before it
			return utf8.AppendRune(out, utf8.RuneError), nil
		}
		// A high surrogate must be followed by "\u" and a low surrogate.
		if !s.more() {
			return nil, s.endError("in string")
		}
		if s.buf[s.pos] != '\\' {
			return utf8.AppendRune(out, utf8.RuneError), nil
		}
		s.pos++
		if !s.more() {
			return nil, s.endError("in string escape")
		}
		if s.buf[s.pos] != 'u' {
			return s.readEscape(utf8.AppendRune(out, utf8.RuneError))
		}
		s.pos++
		low, lowErr := s.readHex4()
		if lowErr == nil && low >= 0xDC00 && low < 0xE000 {
			return utf8.AppendRune(out, utf16.DecodeRune(r, low)), nil
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		r, err = low, lowErr
	}
}

func (s *Scanner) readHex4() (rune, error) {
	var r rune
	for range 4 {
		if !s.more() {
			return 0, s.endError("in string escape")
		}
		c := s.buf[s.pos]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, s.Errorf("invalid character %s in \\u escape", QuoteByte(c))
		}
		s.pos++
		r = r<<4 | rune(v)
	}
	return r, nil
}

// skipString consumes a string without decoding or keeping it, so an
// unknown field of any length costs no memory.
func (s *Scanner) skipString() error {
	s.pos++
	return s.skipStringRest()
}

// skipStringRest consumes the rest of a string, from inside it, up to
// and including its closing quote.
func (s *Scanner) skipStringRest() error {
	for {
		if !s.more() {
			return s.endError("in string")
		}
		c := s.buf[s.pos]
		s.pos++
		switch {
		case c == '"':
			return nil
		case c == '\\':
			if _, err := s.readEscape(s.scratch[:0]); err != nil {
				return err
			}
		case c < 0x20:
			s.pos--
			return s.Errorf("control character %s in string", QuoteByte(c))
		}
	}
}

// readNumber consumes a JSON number and returns its text.
func (s *Scanner) ReadNumber() ([]byte, error) {
	start := s.pos
	i := start
	for i < s.end && isNumberByte(s.buf[i]) {
		i++
	}
	var num []byte
	if i < s.end {
		num = s.buf[start:i]
		s.pos = i
	} else { // the number may go on in the next buffer
		num = append(s.scratch[:0], s.buf[start:s.end]...)
		s.pos = s.end
		for s.more() && isNumberByte(s.buf[s.pos]) {
			num = append(num, s.buf[s.pos])
			s.pos++
			if len(num) > s.maxString {
				break
			}
		}
		s.scratch = num
	}
	if len(num) > s.maxString {
		err := s.stringTooLong()
		// Skip the rest of the number, holding none of it.
		for s.more() && isNumberByte(s.buf[s.pos]) {
			s.pos++
		}
		s.scratch = num[:0]
		return nil, err
	}
	if s.pos == s.end && !s.fill() {
		// A number is never the last byte of a valid body.
		return nil, s.endError("after a number")
	}
	if !isJSONNumber(num) {
		return nil, &SyntaxError{Offset: s.Offset() - int64(len(num)), Msg: fmt.Sprintf("invalid number %q", truncateForError(num))}
	}
	return num, nil
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// isJSONNumber checks the JSON number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || !IsDigit(b[i]) {
			return false
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	return ExponentToEnd(b, i)
}

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// ExponentToEnd reports whether b[i:] is an optional exponent ([eE],
// an optional sign, digits) and nothing after it: the common tail of
// the JSON number grammar and of isDecimal.
func ExponentToEnd(b []byte, i int) bool {
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !IsDigit(b[i]) {
			return false
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	return i == len(b)
}

// readLiteral consumes true, false or null (the first byte is known).
func (s *Scanner) ReadLiteral() (byte, error) {
	var lit string
	switch first := s.buf[s.pos]; first {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for i := range len(lit) {
		if !s.more() {
			return 0, s.endError("in literal " + lit)
		}
		if s.buf[s.pos] != lit[i] {
			return 0, s.Errorf("invalid literal, expected %q", lit)
		}
		s.pos++
	}
	return lit[0], nil
}

// skipValue consumes one JSON value of any shape.
func (s *Scanner) SkipValue(depth int) error {
	if depth > maxSkipDepth {
		return s.Errorf("values nested deeper than %d levels", maxSkipDepth)
	}
	c, err := s.Peek("before value")
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		return s.skipString()
	case c == '{':
		more, err := s.OpenObject("in object")
		for more && err == nil {
			if err = s.skipKey(); err == nil {
				if err = s.SkipValue(depth + 1); err == nil {
					more, err = s.Next('}', "in object")
				}
			}
		}
		return err
	case c == '[':
		s.pos++
		c, err := s.Peek("in array")
		if err != nil {
			return err
		}
		if c == ']' {
			s.pos++
			return nil
		}
		for more := true; more; {
			if err := s.SkipValue(depth + 1); err != nil {
				return err
			}
			if more, err = s.Next(']', "in array"); err != nil {
				return err
			}
		}
		return nil
	case c == 't' || c == 'f' || c == 'n':
		_, err := s.ReadLiteral()
		return err
	case c == '-' || IsDigit(c):
		_, err := s.ReadNumber()
		return err
	}
	return s.Errorf("invalid character %s looking for a value", QuoteByte(c))
}

func (s *Scanner) skipKey() error {
	c, err := s.Peek("in object")
	if err != nil {
		return err
	}
	if c != '"' {
		return s.Errorf("expected object key, found %s", QuoteByte(c))
	}
	if err := s.skipString(); err != nil {
		return err
	}
	return s.Expect(':', "after object key")
}

// replaceInvalidUTF8 replaces every byte that is not part of a valid UTF-8
// sequence with U+FFFD, one replacement per bad byte as encoding/json does.
func replaceInvalidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

func QuoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func truncateForError(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
