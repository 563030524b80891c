package main

// Client construction, topic creation and consumption helpers shared by the scenarios.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerMessageMaxBytes is Kafka's default message.max.bytes: the producer's batch limit is
// raised to it where a scenario produces a record of 1,000,000 bytes (kgo's own default,
// 1,000,012 bytes, is smaller than such a record's batch).
const brokerMessageMaxBytes = 1048588

// newClient makes a kgo client for the bootstrap broker with the given options on top of
// kgo's defaults.
// FRANZ_GO_LOG=debug (or info, warn, error) sends kgo's own log to stderr.
func newClient(e env, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(e.bootstrap)}
	if level, ok := logLevels[os.Getenv("FRANZ_GO_LOG")]; ok {
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string { return time.Now().Format("15:04:05.000 ") })))
	}
	return kgo.NewClient(append(base, opts...)...)
}

var logLevels = map[string]kgo.LogLevel{
	"debug": kgo.LogLevelDebug,
	"info":  kgo.LogLevelInfo,
	"warn":  kgo.LogLevelWarn,
	"error": kgo.LogLevelError,
}

// withAdmin runs fn with a kadm client over a fresh kgo client and closes both.
func withAdmin(e env, fn func(*kadm.Client) error) error {
	cl, err := newClient(e)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	return fn(adm)
}

// createTopic creates topic with the given partition count (replication factor 1) and
// configs, and waits until metadata lists it with those partitions and a leader for each.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic %s: %w (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return eventually(ctx, func() error {
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		td := tds[topic]
		if td.Err != nil {
			return td.Err
		}
		if len(td.Partitions) != int(partitions) {
			return fmt.Errorf("topic %s has %d partitions, want %d", topic, len(td.Partitions), partitions)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return fmt.Errorf("topic %s partition %d has no leader yet (%v)", topic, p.Partition, p.Err)
			}
		}
		return nil
	})
}

// eventually calls check until it returns nil or ctx ends; then it returns check's last
// error. It is only for state a broker makes visible asynchronously (metadata after a
// topic is created or deleted, committed offsets behind autocommit), never for timing.
func eventually(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consumeN reads partitions of topic from their start with a direct (group-less) consumer
// until it has n records (n < 0: no count limit) or stop returns true for a record. Extra
// client options (such as an isolation level) come on top of kgo's defaults.
func consumeN(ctx context.Context, e env, topic string, partitions []int32, n int, stop func(*kgo.Record) bool, opts ...kgo.Opt) ([]*kgo.Record, error) {
	offsets := make(map[int32]kgo.Offset, len(partitions))
	for _, p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient(e, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for n < 0 || len(recs) < n {
		fetches := cl.PollFetches(ctx)
		if err := fetchError(ctx, fetches); err != nil {
			return recs, fmt.Errorf("consuming %s after %d records: %w", topic, len(recs), err)
		}
		for _, r := range fetches.Records() {
			recs = append(recs, r)
			if stop != nil && stop(r) {
				return recs, nil
			}
		}
	}
	return recs, nil
}

// fetchError returns the first error of a poll: the context's when it ended, or a
// partition's fetch error.
func fetchError(ctx context.Context, fetches kgo.Fetches) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
			return ctx.Err()
		}
		return fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
	}
	return nil
}

// produceSync produces records and returns the first per-record error.
func produceSync(ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) error {
	for _, pr := range cl.ProduceSync(ctx, recs...) {
		if pr.Err != nil {
			return fmt.Errorf("produce to %s[%d]: %w", pr.Record.Topic, pr.Record.Partition, pr.Err)
		}
	}
	return nil
}

// codecRecordValue is the value of record i in produce-codec-<codec>.
func codecRecordValue(codec string, i int) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("codec %s record %d ", codec, i), 8))
}

// checkCodecRecords checks the 100 records of a codec topic: in order at offsets 0..99, key
// k<i>, the value above and the single header i=<i>.
func checkCodecRecords(codec string, recs []*kgo.Record) error {
	if len(recs) != 100 {
		return fmt.Errorf("read %d records, want 100", len(recs))
	}
	for i, r := range recs {
		if r.Offset != int64(i) {
			return fmt.Errorf("record %d is at offset %d", i, r.Offset)
		}
		if want := fmt.Sprintf("k%d", i); string(r.Key) != want {
			return fmt.Errorf("record %d: key %q, want %q", i, r.Key, want)
		}
		if want := codecRecordValue(codec, i); !bytes.Equal(r.Value, want) {
			return fmt.Errorf("record %d: value %q, want %q", i, abbreviate(r.Value), abbreviate(want))
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != fmt.Sprint(i) {
			return fmt.Errorf("record %d: headers %s, want [i=%d]", i, headersString(r.Headers), i)
		}
	}
	return nil
}

// headersString renders headers for a failure message.
func headersString(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s=%s", h.Key, bytesString(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// bytesString tells null from empty bytes in a failure message.
func bytesString(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", abbreviate(b))
}

// abbreviate shortens long values in failure messages.
func abbreviate(b []byte) []byte {
	if len(b) > 60 {
		return append(append([]byte{}, b[:60]...), "..."...)
	}
	return b
}

// sameBytes compares two byte fields, null included: nil equals only nil.
func sameBytes(got, want []byte) bool {
	if (got == nil) != (want == nil) {
		return false
	}
	return bytes.Equal(got, want)
}
