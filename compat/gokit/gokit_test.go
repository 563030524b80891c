package gokit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEnvNames(t *testing.T) {
	e := Env{Bootstrap: "127.0.0.1:9092", RunID: "r1", Client: "franz-go"}
	if got := e.Topic("metadata"); got != "compat-franz-go-metadata-r1" {
		t.Errorf("Topic: %s", got)
	}
	if got := e.ID("group"); got != "compat-franz-go-group-r1" {
		t.Errorf("ID: %s", got)
	}
	if got := e.CodecTopic("zstd", "sarama"); got != "compat-codec-zstd-sarama-r1" {
		t.Errorf("CodecTopic: %s", got)
	}
}

func TestRunOneOutcomes(t *testing.T) {
	var produced, consumed []string
	s := Scenarios{
		Plain: map[string]Scenario{
			"ok":    func(context.Context, Env) error { return nil },
			"na":    func(context.Context, Env) error { return NotApplicable("no API") },
			"note":  func(context.Context, Env) error { return PassNote("partly") },
			"fail":  func(context.Context, Env) error { return errors.New("mismatch") },
			"panic": func(context.Context, Env) error { panic("boom") },
			"wrapped-na": func(context.Context, Env) error {
				return errors.Join(NotApplicable("wrapped"))
			},
			"slow": func(ctx context.Context, _ Env) error { <-ctx.Done(); return ctx.Err() },
		},
		ProduceCodec: func(_ context.Context, _ Env, codec string) error {
			produced = append(produced, codec)
			return nil
		},
		ConsumeCodec: func(_ context.Context, _ Env, codec, writer string) error {
			consumed = append(consumed, codec+"/"+writer)
			return nil
		},
	}
	e := Env{Bootstrap: "b:1", RunID: "r", Client: "c"}
	for _, c := range []struct{ name, status, reason string }{
		{"ok", "pass", ""},
		{"na", "n/a", "no API"},
		{"wrapped-na", "n/a", "wrapped"},
		{"note", "pass", "partly"},
		{"fail", "fail", "mismatch"},
		{"panic", "fail", "panic: boom"},
		{"slow", "fail", "context deadline exceeded (the 50ms scenario budget ran out)"},
		{"nope", "fail", `unknown scenario "nope"`},
		{"produce-codec-lz4", "pass", ""},
		{"produce-codec-brotli", "fail", `unknown codec "brotli"`},
		{"consume-codec-gzip:sarama", "pass", ""},
		{"consume-codec-gzip", "fail", `bad scenario id "consume-codec-gzip": want consume-codec-<codec>:<writer>`},
		{"consume-codec-gzip:", "fail", `bad scenario id "consume-codec-gzip:": want consume-codec-<codec>:<writer>`},
		{"consume-codec-xz:sarama", "fail", `unknown codec "xz"`},
	} {
		r := runOne(s, e, c.name, 50*time.Millisecond)
		if r.Scenario != c.name || r.Status != c.status || r.Reason != c.reason {
			t.Errorf("%s: got %+v, want status %q reason %q", c.name, r, c.status, c.reason)
		}
	}
	if strings.Join(produced, ",") != "lz4" || strings.Join(consumed, ",") != "gzip/sarama" {
		t.Errorf("codec scenarios called with %v and %v", produced, consumed)
	}
}

func TestCheckCodecRecords(t *testing.T) {
	good := make([]Record, CodecRecords)
	for i := range good {
		good[i] = Record{Offset: int64(i), Key: CodecRecordKey(i), Value: CodecRecordValue("gzip", i), Headers: CodecRecordHeaders(i)}
	}
	if err := CheckCodecRecords("gzip", good); err != nil {
		t.Fatalf("good records: %v", err)
	}
	if string(good[3].Key) != "k3" || string(good[3].Value) != strings.Repeat("codec gzip record 3 ", 8) {
		t.Fatalf("record 3 is %q=%q", good[3].Key, good[3].Value)
	}
	if err := CheckCodecRecords("gzip", good[:99]); err == nil || err.Error() != "read 99 records, want 100" {
		t.Errorf("short: %v", err)
	}
	if err := CheckCodecRecords("zstd", good); err == nil || !strings.HasPrefix(err.Error(), "record 0: value ") {
		t.Errorf("other codec: %v", err)
	}
	bad := append([]Record(nil), good...)
	bad[7] = Record{Offset: 7, Key: CodecRecordKey(7), Value: CodecRecordValue("gzip", 7), Headers: []Header{{Key: "i", Value: nil}}}
	if err := CheckCodecRecords("gzip", bad); err == nil || err.Error() != "record 7: headers [i=null], want [i=7]" {
		t.Errorf("null header: %v", err)
	}
	bad[7] = good[7]
	bad[8].Offset = 9
	if err := CheckCodecRecords("gzip", bad); err == nil || err.Error() != "record 8 is at offset 9" {
		t.Errorf("offset gap: %v", err)
	}
}

func TestBytesHelpers(t *testing.T) {
	if !SameBytes(nil, nil) || SameBytes(nil, []byte{}) || SameBytes([]byte{}, nil) || !SameBytes([]byte("a"), []byte("a")) {
		t.Error("SameBytes must tell nil from empty")
	}
	if BytesString(nil) != "null" || BytesString([]byte{}) != `""` {
		t.Error("BytesString must tell nil from empty")
	}
	long := []byte(strings.Repeat("x", 61))
	if got := string(Abbreviate(long)); got != strings.Repeat("x", 60)+"..." {
		t.Errorf("Abbreviate: %s", got)
	}
	if got := HeadersString([]Header{{"h1", []byte("v1")}, {"h2", []byte{}}, {"h3", nil}}); got != `[h1="v1" h2="" h3=null]` {
		t.Errorf("HeadersString: %s", got)
	}
	if got := Numbered("aborted", 2); len(got) != 2 || got[0] != "aborted 0" || got[1] != "aborted 1" {
		t.Errorf("Numbered: %v", got)
	}
}

func TestGroupTrackerSettledAndOverlaps(t *testing.T) {
	g := NewGroupTracker(6)
	g.Join("member-1")
	g.Join("member-2")
	if err := g.Settled("member-1"); err == nil || !strings.HasPrefix(err.Error(), "member member-1 owns no partition yet") {
		t.Errorf("nothing owned: %v", err)
	}
	g.Assigned("member-1", 0, 1, 2, 3, 4, 5)
	if err := g.Settled("member-1"); err != nil {
		t.Errorf("one member owns all: %v", err)
	}
	if err := g.Settled("member-1", "member-2"); err == nil {
		t.Error("member-2 owns nothing: want an error")
	}
	// An eager rebalance: member-1 gives everything up, then both get half.
	g.Released("member-1", 0, 1, 2, 3, 4, 5)
	g.Assigned("member-1", 0, 1, 2)
	g.Assigned("member-2", 3, 4, 5)
	if err := g.Settled("member-1", "member-2"); err != nil {
		t.Errorf("disjoint and complete: %v", err)
	}
	if err := g.Overlaps(); err != nil {
		t.Errorf("no overlap yet: %v", err)
	}
	// Partition 2 handed to member-2 before member-1 let it go.
	g.Assigned("member-2", 2)
	err := g.Overlaps()
	if err == nil || !strings.Contains(err.Error(), "partition 2 assigned to member-2 while member-1 owns it") {
		t.Errorf("overlap: %v", err)
	}
	if err := g.Settled("member-1", "member-2"); err == nil || !strings.HasPrefix(err.Error(), "partition 2 is owned by 2 members (member-1:[0 1 2] member-2:[2 3 4 5] )") {
		t.Errorf("double owner: %v", err)
	}
	g.Released("member-1", 2)
	if err := g.Settled("member-1", "member-2"); err != nil {
		t.Errorf("after release: %v", err)
	}
	if g.Overlaps() == nil {
		t.Error("an overlap stays reported after the release")
	}
	g.Released("member-2", 5)
	if err := g.Settled("member-1", "member-2"); err == nil || !strings.HasPrefix(err.Error(), "partition 5 is owned by 0 members") {
		t.Errorf("incomplete: %v", err)
	}
}

func TestGroupTrackerConsumed(t *testing.T) {
	g := NewGroupTracker(2)
	for p := int32(0); p < 2; p++ {
		for o := int64(0); o < 3; o++ {
			g.Consumed(p, o)
			g.Consumed(p, o) // read again after a rebalance
		}
	}
	if err := g.ConsumedAll(3); err != nil {
		t.Errorf("all consumed: %v", err)
	}
	if err := g.ConsumedAll(4); err == nil || err.Error() != "the group consumed 6 distinct records of 8" {
		t.Errorf("short: %v", err)
	}
}

func TestCheckCommitted(t *testing.T) {
	fetch := func(m map[int32]int64, err error) CommittedOffsets {
		return func(context.Context) (map[int32]int64, error) { return m, err }
	}
	ctx := context.Background()
	if err := CheckCommitted(ctx, fetch(map[int32]int64{0: 4, 1: 4}, nil), 2, 4); err != nil {
		t.Errorf("all at 4: %v", err)
	}
	if err := CheckCommitted(ctx, fetch(map[int32]int64{0: 4, 1: 3}, nil), 2, 4); err == nil || err.Error() != "committed offset of partition 1 is 3, want 4" {
		t.Errorf("behind: %v", err)
	}
	if err := CheckCommitted(ctx, fetch(map[int32]int64{0: 4}, nil), 2, 4); err == nil || err.Error() != "partition 1 has no committed offset, want 4" {
		t.Errorf("missing: %v", err)
	}
	if err := CheckCommitted(ctx, fetch(nil, errors.New("COORDINATOR_NOT_AVAILABLE")), 2, 4); err == nil || !strings.Contains(err.Error(), "COORDINATOR_NOT_AVAILABLE") {
		t.Errorf("error: %v", err)
	}
}

// fakeGroup is a group whose "rebalance" gives every running member
// an equal share of the partitions after all have released theirs, as an eager protocol does.
type fakeGroup struct {
	t       *GroupTracker
	running []string
}

func (f *fakeGroup) rebalance() {
	for _, m := range f.running {
		f.t.Released(m, 0, 1, 2, 3, 4, 5)
	}
	if len(f.running) == 0 {
		return
	}
	for p := int32(0); p < GroupPartitions; p++ {
		f.t.Assigned(f.running[int(p)%len(f.running)], p)
	}
}

// fakeMember is a member of a fakeGroup; stopping it rebalances the others.
type fakeMember struct {
	f    *fakeGroup
	name string
}

func (m fakeMember) Stop() {
	m.f.t.Released(m.name, 0, 1, 2, 3, 4, 5)
	for i, n := range m.f.running {
		if n == m.name {
			m.f.running = append(m.f.running[:i], m.f.running[i+1:]...)
			break
		}
	}
	m.f.rebalance()
}

func TestRunConsumerGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := NewGroupTracker(GroupPartitions)
	f := &fakeGroup{t: g}
	var stopped []string
	start := func(name string) (GroupMember, error) {
		f.running = append(f.running, name)
		f.rebalance()
		if name == "member-1" { // the first member reads everything
			for p := int32(0); p < GroupPartitions; p++ {
				for o := int64(0); o < RecordsPerPartition; o++ {
					g.Consumed(p, o)
				}
			}
		}
		return stopRecorder{fakeMember{f, name}, &stopped}, nil
	}
	committed := func(context.Context) (map[int32]int64, error) {
		return map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100, 4: 100, 5: 100}, nil
	}
	if err := RunConsumerGroup(ctx, g, start, committed); err != nil {
		t.Fatalf("RunConsumerGroup: %v", err)
	}
	if strings.Join(stopped, ",") != "member-2,member-1,member-3" {
		t.Errorf("stopped %v", stopped)
	}
}

func TestRunConsumerGroupFailsOnOverlap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := NewGroupTracker(GroupPartitions)
	f := &fakeGroup{t: g}
	start := func(name string) (GroupMember, error) {
		f.running = append(f.running, name)
		if name == "member-3" { // takes partition 0 before its owner let it go
			g.Assigned("member-3", 0)
		}
		f.rebalance()
		for p := int32(0); p < GroupPartitions; p++ {
			for o := int64(0); o < RecordsPerPartition; o++ {
				g.Consumed(p, o)
			}
		}
		return fakeMember{f, name}, nil
	}
	committed := func(context.Context) (map[int32]int64, error) {
		return map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100, 4: 100, 5: 100}, nil
	}
	err := RunConsumerGroup(ctx, g, start, committed)
	if err == nil || !strings.Contains(err.Error(), "partition 0 assigned to member-3 while member-1 owns it") {
		t.Fatalf("want the overlap, got %v", err)
	}
}

func TestRunConsumerGroupBoundedByContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	g := NewGroupTracker(GroupPartitions)
	start := func(name string) (GroupMember, error) { return fakeMember{&fakeGroup{t: g}, name}, nil }
	err := RunConsumerGroup(ctx, g, start, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "after starting member-1: member member-1 owns no partition yet") {
		t.Fatalf("want a bounded wait for member-1, got %v", err)
	}
}

type stopRecorder struct {
	m       fakeMember
	stopped *[]string
}

func (s stopRecorder) Stop() {
	*s.stopped = append(*s.stopped, s.m.name)
	s.m.Stop()
}
