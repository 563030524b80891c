package gokit

// The records of the codec scenarios, and how records appear in failure messages.

import (
	"bytes"
	"fmt"
	"strings"
)

// CodecRecords is how many records produce-codec-<codec> writes and consume-codec reads.
const CodecRecords = 100

// Record is a consumed record as the checks here see it: a driver turns its client's
// records into these (nil and empty bytes kept apart as the client presents them).
type Record struct {
	Offset  int64
	Key     []byte
	Value   []byte
	Headers []Header
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// CodecRecordKey is the key of record i in produce-codec-<codec>: k<i>.
func CodecRecordKey(i int) []byte {
	return []byte(fmt.Sprintf("k%d", i))
}

// CodecRecordValue is the value of record i in produce-codec-<codec>: "codec <codec>
// record <i> " repeated 8 times.
func CodecRecordValue(codec string, i int) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("codec %s record %d ", codec, i), 8))
}

// CodecRecordHeaders are the headers of record i in produce-codec-<codec>: the one header
// i=<i>.
func CodecRecordHeaders(i int) []Header {
	return []Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}
}

// CheckCodecRecords checks the records of a codec topic: CodecRecords of them, in order at
// offsets 0..99, each with the key, value and single header above.
func CheckCodecRecords(codec string, recs []Record) error {
	if len(recs) != CodecRecords {
		return fmt.Errorf("read %d records, want %d", len(recs), CodecRecords)
	}
	for i, r := range recs {
		if r.Offset != int64(i) {
			return fmt.Errorf("record %d is at offset %d", i, r.Offset)
		}
		if want := CodecRecordKey(i); !bytes.Equal(r.Key, want) {
			return fmt.Errorf("record %d: key %q, want %q", i, r.Key, want)
		}
		if want := CodecRecordValue(codec, i); !bytes.Equal(r.Value, want) {
			return fmt.Errorf("record %d: value %q, want %q", i, Abbreviate(r.Value), Abbreviate(want))
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != fmt.Sprint(i) {
			return fmt.Errorf("record %d: headers %s, want [i=%d]", i, HeadersString(r.Headers), i)
		}
	}
	return nil
}

// HeadersString renders headers for a failure message: [k1="v1" k2=null].
func HeadersString(hs []Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s=%s", h.Key, BytesString(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// BytesString renders bytes for a failure message, telling null (nil) from empty and
// shortening long values.
func BytesString(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", Abbreviate(b))
}

// Abbreviate shortens a value longer than 60 bytes to its first 60 and "...", for failure
// messages; it returns shorter values themselves.
func Abbreviate(b []byte) []byte {
	if len(b) > 60 {
		return append(append([]byte{}, b[:60]...), "..."...)
	}
	return b
}

// SameBytes compares two byte fields, null included: nil equals only nil, empty only
// empty.
func SameBytes(got, want []byte) bool {
	if (got == nil) != (want == nil) {
		return false
	}
	return bytes.Equal(got, want)
}

// Numbered returns "<prefix> 0".."<prefix> n-1".
func Numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i)
	}
	return out
}
