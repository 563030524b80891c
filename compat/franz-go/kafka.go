package main

// Client construction, topic creation and consumption helpers shared by the scenarios.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"odradek/compat/gokit"

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
func newClient(e gokit.Env, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(e.Bootstrap)}
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
func withAdmin(e gokit.Env, fn func(*kadm.Client) error) error {
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
	return gokit.Eventually(ctx, func() error {
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

// consumeN reads partitions of topic from their start with a direct (group-less) consumer
// until it has n records (n < 0: no count limit) or stop returns true for a record. Extra
// client options (such as an isolation level) come on top of kgo's defaults.
func consumeN(ctx context.Context, e gokit.Env, topic string, partitions []int32, n int, stop func(*kgo.Record) bool, opts ...kgo.Opt) ([]*kgo.Record, error) {
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

// checkCodecRecords checks the records of a codec topic (gokit.CheckCodecRecords).
func checkCodecRecords(codec string, recs []*kgo.Record) error {
	view := make([]gokit.Record, len(recs))
	for i, r := range recs {
		view[i] = gokit.Record{Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: headers(r.Headers)}
	}
	return gokit.CheckCodecRecords(codec, view)
}

// headers turns kgo's record headers into gokit's, for checks and failure messages.
func headers(hs []kgo.RecordHeader) []gokit.Header {
	out := make([]gokit.Header, len(hs))
	for i, h := range hs {
		out[i] = gokit.Header{Key: h.Key, Value: h.Value}
	}
	return out
}
