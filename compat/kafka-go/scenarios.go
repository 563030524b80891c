package main

// The scenarios of compat/SCENARIOS.md but the consumer-group ones (group.go).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"odradek/compat/gokit"

	"github.com/segmentio/kafka-go"
)

// metadata: one broker at the bootstrap host and port; the created topic listed with its
// partition count.
func metadata(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("metadata")
	wantHost, wantPort, err := net.SplitHostPort(e.Bootstrap)
	if err != nil {
		return err
	}
	if err := createTopic(ctx, e, topic, 1); err != nil {
		return err
	}
	md, err := newClient(e).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) != 1 {
		return fmt.Errorf("metadata lists %d brokers, want 1: %v", len(md.Brokers), md.Brokers)
	}
	b := md.Brokers[0]
	if b.Host != wantHost || strconv.Itoa(b.Port) != wantPort {
		return fmt.Errorf("broker %d is at %s:%d, want %s", b.ID, b.Host, b.Port, e.Bootstrap)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != topic || md.Topics[0].Error != nil {
		return fmt.Errorf("metadata for %s lists %v", topic, md.Topics)
	}
	if n := len(md.Topics[0].Partitions); n != 1 {
		return fmt.Errorf("topic %s has %d partitions, want 1", topic, n)
	}
	return nil
}

// topicsAdmin: create with 3 partitions and retention.ms, describe, describe and alter its
// configs, grow it to 5 partitions, delete it.
func topicsAdmin(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("topics-admin")
	cl := newClient(e)
	if err := createTopic(ctx, e, topic, 3, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "3600000"}); err != nil {
		return err
	}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) != 1 || len(md.Topics) != 1 {
		return fmt.Errorf("metadata lists brokers %v and topics %v", md.Brokers, md.Topics)
	}
	if n := len(md.Topics[0].Partitions); n != 3 {
		return fmt.Errorf("described %d partitions, want 3", n)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader.ID != md.Brokers[0].ID {
			return fmt.Errorf("partition %d: leader %d, want broker %d", p.ID, p.Leader.ID, md.Brokers[0].ID)
		}
	}
	// Kafka applies config changes asynchronously: read until the change shows.
	if err := gokit.Eventually(ctx, func() error { return checkRetention(ctx, cl, topic, "3600000") }); err != nil {
		return err
	}
	ar, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: "7200000", ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	for _, r := range ar.Resources {
		if r.Error != nil {
			return fmt.Errorf("alter configs of %s: %w", r.ResourceName, r.Error)
		}
	}
	// Kafka applies config changes asynchronously: read until the change shows.
	if err := gokit.Eventually(ctx, func() error { return checkRetention(ctx, cl, topic, "7200000") }); err != nil {
		return err
	}
	cp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 5}}})
	if err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	if err := cp.Errors[topic]; err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	if err := gokit.Eventually(ctx, func() error {
		t, err := describeTopic(ctx, cl, topic)
		if err != nil {
			return err
		}
		if n := len(t.Partitions); n != 5 {
			return fmt.Errorf("after growing to 5 partitions, metadata lists %d", n)
		}
		return nil
	}); err != nil {
		return err
	}
	dr, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	if err := dr.Errors[topic]; err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	return gokit.Eventually(ctx, func() error {
		all, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
		if err != nil {
			return err
		}
		if len(all.Topics) == 0 {
			return errors.New("metadata for all topics lists none: the scenario's other topics are missing")
		}
		for _, t := range all.Topics {
			if t.Name == topic {
				return fmt.Errorf("deleted topic %s is still listed", topic)
			}
		}
		return nil
	})
}

// checkRetention describes topic's configs and checks retention.ms.
func checkRetention(ctx context.Context, cl *kafka.Client, topic, want string) error {
	resp, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
	}}})
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	if len(resp.Resources) != 1 {
		return fmt.Errorf("describe configs: %d resources in the answer", len(resp.Resources))
	}
	r := resp.Resources[0]
	if r.Error != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, r.Error)
	}
	for _, c := range r.ConfigEntries {
		if c.ConfigName == "retention.ms" {
			if c.ConfigValue != want {
				return fmt.Errorf("retention.ms is %q (source %d), want %s", c.ConfigValue, c.ConfigSource, want)
			}
			return nil
		}
	}
	return errors.New("retention.ms missing from the described configs")
}

// produceConsume: four records of every shape through one partition and back.
func produceConsume(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("produce-consume")
	if err := createTopic(ctx, e, topic, 1); err != nil {
		return err
	}
	big := make([]byte, 1_000_000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	sent := []kafka.Message{
		{Key: []byte("key-0"), Value: []byte("value-0"), Time: time.UnixMilli(1700000000000),
			Headers: []kafka.Header{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: []byte{}}}},
		{Key: nil, Value: nil},
		{Key: []byte{}, Value: []byte{}},
		{Key: []byte("big"), Value: big},
	}
	want := append([]kafka.Message(nil), sent...) // the Writer may stamp its copies
	sendStart := time.Now().Truncate(time.Millisecond)
	if err := write(ctx, e, topic, nil, sent...); err != nil {
		return err
	}
	sendEnd := time.Now()
	// The Reader's default MaxBytes (1e6) is below the 1,000,000-byte record's batch.
	got, err := readN(ctx, e, topic, 0, len(want), nil, func(c *kafka.ReaderConfig) { c.MaxBytes = 2 << 20 })
	if err != nil {
		return err
	}
	// kafka-go's Reader presents empty bytes as nil (it writes the two apart, and reads
	// either as nil): keys, values and header values are compared as it presents them.
	for i, w := range want {
		m := got[i]
		if m.Offset != int64(i) {
			return fmt.Errorf("record %d at offset %d", i, m.Offset)
		}
		if !samePresented(m.Key, w.Key) {
			return fmt.Errorf("record %d: key %s, want %s", i, gokit.BytesString(m.Key), gokit.BytesString(w.Key))
		}
		if !samePresented(m.Value, w.Value) {
			return fmt.Errorf("record %d: value %s (%d bytes), want %s (%d bytes)", i, gokit.BytesString(m.Value), len(m.Value), gokit.BytesString(w.Value), len(w.Value))
		}
		if !w.Time.IsZero() && !m.Time.Equal(w.Time) {
			return fmt.Errorf("record %d: timestamp %d, want %d", i, m.Time.UnixMilli(), w.Time.UnixMilli())
		}
		if w.Time.IsZero() && (m.Time.Before(sendStart) || m.Time.After(sendEnd)) {
			return fmt.Errorf("record %d: timestamp %d is not the send time (%d..%d)", i, m.Time.UnixMilli(), sendStart.UnixMilli(), sendEnd.UnixMilli())
		}
		if len(m.Headers) != len(w.Headers) {
			return fmt.Errorf("record %d: headers %s, want %s", i, gokit.HeadersString(headers(m.Headers)), gokit.HeadersString(headers(w.Headers)))
		}
		for j, h := range w.Headers {
			if m.Headers[j].Key != h.Key || !samePresented(m.Headers[j].Value, h.Value) {
				return fmt.Errorf("record %d: headers %s, want %s", i, gokit.HeadersString(headers(m.Headers)), gokit.HeadersString(headers(w.Headers)))
			}
		}
	}
	return gokit.PassNote("kafka-go's Reader presents empty bytes as null: the empty key, value and header value are compared as it presents them (its Writer writes null and empty apart)")
}

// codecs maps the scenario's codec names (gokit.Codecs) to kafka-go's.
var codecs = map[string]kafka.Compression{
	"none":   0,
	"gzip":   kafka.Gzip,
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
}

// produceCodec: 100 records compressed with codec to compat-codec-<codec>-kafka-go-<RID>.
func produceCodec(ctx context.Context, e gokit.Env, codec string) error {
	c, ok := codecs[codec]
	if !ok {
		return fmt.Errorf("unknown codec %q", codec)
	}
	topic := e.CodecTopic(codec, e.Client)
	if err := createTopic(ctx, e, topic, 1); err != nil {
		return err
	}
	msgs := make([]kafka.Message, gokit.CodecRecords)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: gokit.CodecRecordKey(i), Value: gokit.CodecRecordValue(codec, i)}
		for _, h := range gokit.CodecRecordHeaders(i) {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
	}
	if err := write(ctx, e, topic, func(w *kafka.Writer) { w.Compression = c }, msgs...); err != nil {
		return err
	}
	got, err := readN(ctx, e, topic, 0, gokit.CodecRecords, nil, nil)
	if err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	return checkCodecRecords(codec, got)
}

// consumeCodec: read what writer produced in produce-codec-<codec>.
func consumeCodec(ctx context.Context, e gokit.Env, codec, writer string) error {
	got, err := readN(ctx, e, e.CodecTopic(codec, writer), 0, gokit.CodecRecords, nil, nil)
	if err != nil {
		return err
	}
	return checkCodecRecords(codec, got)
}

// listOffsetsByTime: three records one second apart, then offsets by special and real
// times, with Conn's lookups (kafka-go's Client.ListOffsets files an earliest-offset
// answer under LastOffset, since Kafka answers it with timestamp -1).
func listOffsetsByTime(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("list-offsets-by-time")
	// The records are years old: no retention, or a retention pass would delete them.
	if err := createTopic(ctx, e, topic, 1, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "-1"}); err != nil {
		return err
	}
	var msgs []kafka.Message
	for i := int64(0); i < 3; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("t%d", i)), Time: time.UnixMilli(1700000000000 + 1000*i)})
	}
	if err := writeAcked(ctx, e, topic, nil, msgs...); err != nil {
		return err
	}
	conn, err := leaderConn(ctx, e, topic)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, c := range []struct {
		what string
		read func() (int64, error)
		want int64
	}{
		{"earliest", conn.ReadFirstOffset, 0},
		{"latest", conn.ReadLastOffset, 3},
		{"time 1700000000500", func() (int64, error) { return conn.ReadOffset(time.UnixMilli(1700000000500)) }, 1},
		{"time 1700000002000", func() (int64, error) { return conn.ReadOffset(time.UnixMilli(1700000002000)) }, 2},
		{"time 1700000003000", func() (int64, error) { return conn.ReadOffset(time.UnixMilli(1700000003000)) }, -1},
	} {
		got, err := c.read()
		if err != nil {
			return fmt.Errorf("%s offset: %w", c.what, err)
		}
		if got != c.want {
			return fmt.Errorf("%s offset is %d, want %d", c.what, got, c.want)
		}
	}
	return nil
}

// idempotentProducer is n/a: kafka-go's Writer has no idempotent mode.
func idempotentProducer(context.Context, gokit.Env) error {
	return gokit.NotApplicable("kafka-go has no idempotent producer (its Writer never sends InitProducerId nor producer ids and sequences)")
}

// transactions is n/a: kafka-go has no transactional producer.
func transactions(context.Context, gokit.Env) error {
	return gokit.NotApplicable("kafka-go has no transactional producer (only raw InitProducerId/AddPartitionsToTxn/EndTxn request wrappers; its Writer cannot write transactional batches)")
}

// deleteRecords is n/a: kafka-go has no DeleteRecords API.
func deleteRecords(context.Context, gokit.Env) error {
	return gokit.NotApplicable("kafka-go has no DeleteRecords API")
}
