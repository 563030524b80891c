package main

// Configuration, topic creation and consumption helpers shared by the scenarios.
//
// sarama's calls take no context: they are bounded by its own network timeouts and retry
// counts, and gokit.Main abandons a scenario that outlives its budget. Loops that wait
// for messages select on the scenario's context.

import (
	"context"
	"fmt"
	"log"
	"os"

	"odradek/compat/gokit"

	"github.com/IBM/sarama"
)

// newConfig returns sarama's default configuration. SARAMA_LOG=1 sends sarama's own log to
// stderr.
func newConfig() *sarama.Config {
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	return sarama.NewConfig()
}

// withAdmin runs fn with a ClusterAdmin on sarama's default configuration and closes it.
func withAdmin(e gokit.Env, fn func(sarama.ClusterAdmin) error) error {
	adm, err := sarama.NewClusterAdmin([]string{e.Bootstrap}, newConfig())
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer adm.Close()
	return fn(adm)
}

// createTopic creates topic with the given partition count (replication factor 1) and
// configs, and waits until it is described with those partitions, each with a leader.
func createTopic(ctx context.Context, adm sarama.ClusterAdmin, topic string, partitions int32, configs map[string]*string) error {
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}
	if err := adm.CreateTopic(topic, detail, false); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return gokit.Eventually(ctx, func() error {
		tms, err := adm.DescribeTopics([]string{topic})
		if err != nil {
			return err
		}
		if len(tms) != 1 || tms[0].Err != sarama.ErrNoError {
			return fmt.Errorf("describe %s: %v", topic, tms)
		}
		if n := len(tms[0].Partitions); n != int(partitions) {
			return fmt.Errorf("topic %s has %d partitions, want %d", topic, n, partitions)
		}
		for _, p := range tms[0].Partitions {
			if p.Leader < 0 || p.Err != sarama.ErrNoError {
				return fmt.Errorf("topic %s partition %d has no leader yet (%v)", topic, p.ID, p.Err)
			}
		}
		return nil
	})
}

// createTopicWithAdmin is createTopic with an admin client of its own.
func createTopicWithAdmin(ctx context.Context, e gokit.Env, topic string, partitions int32) error {
	return withAdmin(e, func(adm sarama.ClusterAdmin) error { return createTopic(ctx, adm, topic, partitions, nil) })
}

// consumeN reads partition of topic from the oldest offset with a partition consumer
// until it has n messages (n < 0: no count limit) or stop returns true for one. configure
// may change the consumer's configuration (an isolation level); errors are returned
// through the consumer's error channel so that they can fail the scenario.
func consumeN(ctx context.Context, e gokit.Env, topic string, partition int32, n int, stop func(*sarama.ConsumerMessage) bool, configure func(*sarama.Config)) ([]*sarama.ConsumerMessage, error) {
	cfg := newConfig()
	cfg.Consumer.Return.Errors = true
	if configure != nil {
		configure(cfg)
	}
	consumer, err := sarama.NewConsumer([]string{e.Bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("consume %s[%d]: %w", topic, partition, err)
	}
	defer pc.Close()
	var msgs []*sarama.ConsumerMessage
	for n < 0 || len(msgs) < n {
		select {
		case m := <-pc.Messages():
			msgs = append(msgs, m)
			if stop != nil && stop(m) {
				return msgs, nil
			}
		case err := <-pc.Errors():
			return msgs, fmt.Errorf("consuming %s[%d] after %d messages: %w", topic, partition, len(msgs), err)
		case <-ctx.Done():
			return msgs, fmt.Errorf("consuming %s[%d]: %d messages read: %w", topic, partition, len(msgs), ctx.Err())
		}
	}
	return msgs, nil
}

// newSyncProducer makes a SyncProducer; configure may change sarama's defaults first.
// (A SyncProducer needs Producer.Return.Successes, which sarama's default leaves off.)
func newSyncProducer(e gokit.Env, configure func(*sarama.Config)) (sarama.SyncProducer, error) {
	cfg := newConfig()
	cfg.Producer.Return.Successes = true
	if configure != nil {
		configure(cfg)
	}
	p, err := sarama.NewSyncProducer([]string{e.Bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return p, nil
}

// sendAll sends msgs with a SyncProducer and returns the first error, with its message.
func sendAll(p sarama.SyncProducer, msgs []*sarama.ProducerMessage) error {
	if err := p.SendMessages(msgs); err != nil {
		if pes, ok := err.(sarama.ProducerErrors); ok && len(pes) > 0 {
			return fmt.Errorf("produce (%d failed): %w", len(pes), pes[0].Err)
		}
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// produceNumbered produces n messages with values "0".."n-1" to partition 0 of topic.
func produceNumbered(e gokit.Env, topic string, n int) error {
	p, err := newSyncProducer(e, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprint(i))}
	}
	return sendAll(p, msgs)
}

// checkCodecRecords checks the messages of a codec topic (gokit.CheckCodecRecords).
func checkCodecRecords(codec string, msgs []*sarama.ConsumerMessage) error {
	view := make([]gokit.Record, len(msgs))
	for i, m := range msgs {
		view[i] = gokit.Record{Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: headers(m.Headers)}
	}
	return gokit.CheckCodecRecords(codec, view)
}

// headers turns sarama's record headers into gokit's, for checks and failure messages.
func headers(hs []*sarama.RecordHeader) []gokit.Header {
	out := make([]gokit.Header, len(hs))
	for i, h := range hs {
		out[i] = gokit.Header{Key: string(h.Key), Value: h.Value}
	}
	return out
}
