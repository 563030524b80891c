package main

// Client construction, topic creation and consumption helpers shared by the scenarios.
//
// kafka-go's Writer defaults are kept where a scenario is about producing (produce-consume,
// produce-codec-*): acknowledgements RequireNone (acks=0, so a write the broker refuses
// shows up as a record missing when reading back), batches of up to 100 messages or 1 s.
// Records a scenario only needs as its starting point are written with acks=all
// (writeAcked), so that a refused write is retried or reported rather than lost.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"odradek/compat/gokit"

	"github.com/segmentio/kafka-go"
)

// newClient returns a kafka-go Client for the bootstrap broker.
func newClient(e gokit.Env) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(e.Bootstrap)}
}

// logger returns kafka-go's logger for KAFKA_GO_LOG=1, or nil (no log).
func logger(name string) kafka.Logger {
	if os.Getenv("KAFKA_GO_LOG") == "" {
		return nil
	}
	return log.New(os.Stderr, "[kafka-go "+name+"] ", log.LstdFlags|log.Lmicroseconds)
}

// errorLogger sends kafka-go's error log to stderr.
func errorLogger(name string) kafka.Logger {
	return log.New(os.Stderr, "[kafka-go "+name+" error] ", log.LstdFlags|log.Lmicroseconds)
}

// createTopic creates topic with the given partition count (replication factor 1) and
// configs, and waits until metadata lists it with those partitions, each with a leader.
func createTopic(ctx context.Context, e gokit.Env, topic string, partitions int, configs ...kafka.ConfigEntry) error {
	cl := newClient(e)
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return gokit.Eventually(ctx, func() error {
		t, err := describeTopic(ctx, cl, topic)
		if err != nil {
			return err
		}
		if len(t.Partitions) != partitions {
			return fmt.Errorf("topic %s has %d partitions, want %d", topic, len(t.Partitions), partitions)
		}
		for _, p := range t.Partitions {
			if p.Leader.ID < 0 || p.Error != nil {
				return fmt.Errorf("topic %s partition %d has no leader yet (%v)", topic, p.ID, p.Error)
			}
		}
		// A leader in the metadata may not lead yet (Kafka answers NOT_LEADER_OR_FOLLOWER
		// for a moment after creating a topic); an acks=0 write to it would be lost.
		for _, p := range t.Partitions {
			if err := leaderAnswers(ctx, e, topic, p.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// leaderAnswers asks partition's leader for its latest offset.
func leaderAnswers(ctx context.Context, e gokit.Env, topic string, partition int) error {
	conn, err := kafka.DialLeader(ctx, "tcp", e.Bootstrap, topic, partition)
	if err != nil {
		return fmt.Errorf("dial the leader of %s[%d]: %w", topic, partition, err)
	}
	defer conn.Close()
	if _, err := conn.ReadLastOffset(); err != nil {
		return fmt.Errorf("latest offset of %s[%d]: %w", topic, partition, err)
	}
	return nil
}

// describeTopic returns topic's metadata.
func describeTopic(ctx context.Context, cl *kafka.Client, topic string) (kafka.Topic, error) {
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return kafka.Topic{}, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return t, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return t, nil
		}
	}
	return kafka.Topic{}, fmt.Errorf("metadata does not list %s", topic)
}

// write sends msgs to topic with a Writer on kafka-go's defaults, changed by configure.
func write(ctx context.Context, e gokit.Env, topic string, configure func(*kafka.Writer), msgs ...kafka.Message) error {
	w := &kafka.Writer{Addr: kafka.TCP(e.Bootstrap), Topic: topic, ErrorLogger: errorLogger("writer"), Logger: logger("writer")}
	if configure != nil {
		configure(w)
	}
	err := w.WriteMessages(ctx, msgs...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			for _, e := range we {
				if e != nil {
					return fmt.Errorf("write to %s: %d of %d messages failed, first: %w", topic, we.Count(), len(msgs), e)
				}
			}
		}
		return fmt.Errorf("write to %s: %w", topic, err)
	}
	return nil
}

// writeAcked writes msgs with acks=all, changing the Writer further with configure.
func writeAcked(ctx context.Context, e gokit.Env, topic string, configure func(*kafka.Writer), msgs ...kafka.Message) error {
	return write(ctx, e, topic, func(w *kafka.Writer) {
		w.RequiredAcks = kafka.RequireAll
		if configure != nil {
			configure(w)
		}
	}, msgs...)
}

// writeNumbered writes n messages with values "0".."n-1" to topic (one partition), acked.
func writeNumbered(ctx context.Context, e gokit.Env, topic string, n int) error {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(fmt.Sprint(i))}
	}
	return writeAcked(ctx, e, topic, nil, msgs...)
}

// readN reads partition of topic from its first offset with a partition Reader until it has
// n messages (n < 0: no count limit) or stop returns true for one. configure may change
// the reader's configuration (a larger MaxBytes, an isolation level).
func readN(ctx context.Context, e gokit.Env, topic string, partition, n int, stop func(kafka.Message) bool, configure func(*kafka.ReaderConfig)) ([]kafka.Message, error) {
	cfg := kafka.ReaderConfig{Brokers: []string{e.Bootstrap}, Topic: topic, Partition: partition,
		Logger: logger("reader"), ErrorLogger: errorLogger("reader")}
	if configure != nil {
		configure(&cfg)
	}
	r := kafka.NewReader(cfg)
	// Close waits for the Reader's fetch in flight, a long poll of up to MaxWait (10 s by
	// default) once it has read everything: let it finish apart.
	defer func() { go r.Close() }()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return nil, err
	}
	var msgs []kafka.Message
	for n < 0 || len(msgs) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return msgs, fmt.Errorf("reading %s[%d] after %d messages: %w", topic, partition, len(msgs), err)
		}
		msgs = append(msgs, m)
		if stop != nil && stop(m) {
			break
		}
	}
	return msgs, nil
}

// leaderConn dials the leader of partition 0 of topic (for Conn's offset lookups).
func leaderConn(ctx context.Context, e gokit.Env, topic string) (*kafka.Conn, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", e.Bootstrap, topic, 0)
	if err != nil {
		return nil, fmt.Errorf("dial the leader of %s[0]: %w", topic, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	return conn, nil
}

// checkCodecRecords checks the messages of a codec topic (gokit.CheckCodecRecords).
func checkCodecRecords(codec string, msgs []kafka.Message) error {
	view := make([]gokit.Record, len(msgs))
	for i, m := range msgs {
		view[i] = gokit.Record{Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: headers(m.Headers)}
	}
	return gokit.CheckCodecRecords(codec, view)
}

// headers turns kafka-go's message headers into gokit's, for checks and failure messages.
func headers(hs []kafka.Header) []gokit.Header {
	out := make([]gokit.Header, len(hs))
	for i, h := range hs {
		out[i] = gokit.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// samePresented compares two byte fields as kafka-go's Reader presents them: it reads a
// null and an empty field alike, as nil, so nil and empty are equal here.
func samePresented(got, want []byte) bool {
	return bytes.Equal(got, want)
}
