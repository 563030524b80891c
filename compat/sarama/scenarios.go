package main

// The scenarios of compat/SCENARIOS.md but the consumer-group ones (group.go).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"odradek/compat/gokit"

	"github.com/IBM/sarama"
)

// metadata: one broker at the bootstrap host and port; the created topic listed with its
// partition count.
func metadata(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("metadata")
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	client, err := sarama.NewClient([]string{e.Bootstrap}, newConfig())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	brokers := client.Brokers()
	if len(brokers) != 1 {
		return fmt.Errorf("metadata lists %d brokers, want 1", len(brokers))
	}
	if addr := brokers[0].Addr(); addr != e.Bootstrap {
		return fmt.Errorf("broker %d is at %s, want %s", brokers[0].ID(), addr, e.Bootstrap)
	}
	ps, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if len(ps) != 1 {
		return fmt.Errorf("topic %s has %d partitions, want 1", topic, len(ps))
	}
	return nil
}

// topicsAdmin: create with 3 partitions and retention.ms, describe, describe and alter its
// configs, grow it to 5 partitions, delete it.
func topicsAdmin(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("topics-admin")
	return withAdmin(e, func(adm sarama.ClusterAdmin) error {
		retention := "3600000"
		if err := createTopic(ctx, adm, topic, 3, map[string]*string{"retention.ms": &retention}); err != nil {
			return err
		}
		brokers, _, err := adm.DescribeCluster()
		if err != nil {
			return fmt.Errorf("describe cluster: %w", err)
		}
		if len(brokers) != 1 {
			return fmt.Errorf("%d brokers, want 1", len(brokers))
		}
		tms, err := adm.DescribeTopics([]string{topic})
		if err != nil {
			return fmt.Errorf("describe topic: %w", err)
		}
		if len(tms) != 1 || len(tms[0].Partitions) != 3 {
			return fmt.Errorf("described %v, want 3 partitions", tms)
		}
		for _, p := range tms[0].Partitions {
			if p.Leader != brokers[0].ID() {
				return fmt.Errorf("partition %d: leader %d, want broker %d", p.ID, p.Leader, brokers[0].ID())
			}
		}
		// Kafka applies config changes asynchronously: read until the change shows.
		if err := gokit.Eventually(ctx, func() error { return checkRetention(adm, topic, "3600000") }); err != nil {
			return err
		}
		longer := "7200000"
		alter := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &longer}}
		if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, alter, false); err != nil {
			return fmt.Errorf("alter configs: %w", err)
		}
		// Kafka applies config changes asynchronously: read until the change shows.
		if err := gokit.Eventually(ctx, func() error { return checkRetention(adm, topic, "7200000") }); err != nil {
			return err
		}
		if err := adm.CreatePartitions(topic, 5, nil, false); err != nil {
			return fmt.Errorf("create partitions: %w", err)
		}
		if err := gokit.Eventually(ctx, func() error {
			tms, err := adm.DescribeTopics([]string{topic})
			if err != nil {
				return err
			}
			if n := len(tms[0].Partitions); n != 5 {
				return fmt.Errorf("after growing to 5 partitions, described %d", n)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := adm.DeleteTopic(topic); err != nil {
			return fmt.Errorf("delete topic: %w", err)
		}
		return gokit.Eventually(ctx, func() error {
			all, err := adm.ListTopics()
			if err != nil {
				return err
			}
			if _, ok := all[topic]; ok {
				return fmt.Errorf("deleted topic %s is still listed", topic)
			}
			return nil
		})
	})
}

// checkRetention describes topic's configs and checks retention.ms.
func checkRetention(adm sarama.ClusterAdmin, topic, want string) error {
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	for _, c := range entries {
		if c.Name == "retention.ms" {
			if c.Value != want {
				return fmt.Errorf("retention.ms is %q (source %v), want %s", c.Value, c.Source, want)
			}
			return nil
		}
	}
	return errors.New("retention.ms missing from the described configs")
}

// produceConsume: four records of every shape through one partition and back.
func produceConsume(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("produce-consume")
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	big := make([]byte, 1_000_000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	type want struct {
		key, value []byte
		headers    []sarama.RecordHeader
		timestamp  time.Time // zero: sarama stamps the send time
	}
	wants := []want{
		{[]byte("key-0"), []byte("value-0"), []sarama.RecordHeader{{Key: []byte("h1"), Value: []byte("v1")}, {Key: []byte("h2"), Value: []byte{}}}, time.UnixMilli(1700000000000)},
		{nil, nil, nil, time.Time{}},
		{[]byte{}, []byte{}, nil, time.Time{}},
		{[]byte("big"), big, nil, time.Time{}},
	}
	encoder := func(b []byte) sarama.Encoder {
		if b == nil {
			return nil
		}
		return sarama.ByteEncoder(b)
	}
	msgs := make([]*sarama.ProducerMessage, len(wants))
	for i, w := range wants {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: encoder(w.key), Value: encoder(w.value), Headers: w.headers, Timestamp: w.timestamp}
	}
	p, err := newSyncProducer(e, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	sendStart := time.Now().Truncate(time.Millisecond)
	if err := sendAll(p, msgs); err != nil {
		return err
	}
	sendEnd := time.Now()
	got, err := consumeN(ctx, e, topic, 0, len(wants), nil, nil)
	if err != nil {
		return err
	}
	for i, w := range wants {
		m := got[i]
		if m.Offset != int64(i) {
			return fmt.Errorf("record %d at offset %d", i, m.Offset)
		}
		if !gokit.SameBytes(m.Key, w.key) {
			return fmt.Errorf("record %d: key %s, want %s", i, gokit.BytesString(m.Key), gokit.BytesString(w.key))
		}
		if !gokit.SameBytes(m.Value, w.value) {
			return fmt.Errorf("record %d: value %s (%d bytes), want %s (%d bytes)", i, gokit.BytesString(m.Value), len(m.Value), gokit.BytesString(w.value), len(w.value))
		}
		if !w.timestamp.IsZero() && !m.Timestamp.Equal(w.timestamp) {
			return fmt.Errorf("record %d: timestamp %d, want %d", i, m.Timestamp.UnixMilli(), w.timestamp.UnixMilli())
		}
		if w.timestamp.IsZero() && (m.Timestamp.Before(sendStart) || m.Timestamp.After(sendEnd)) {
			return fmt.Errorf("record %d: timestamp %d is not the send time (%d..%d)", i, m.Timestamp.UnixMilli(), sendStart.UnixMilli(), sendEnd.UnixMilli())
		}
		if len(m.Headers) != len(w.headers) {
			return fmt.Errorf("record %d: headers %s, want %d headers", i, gokit.HeadersString(headers(m.Headers)), len(w.headers))
		}
		for j, h := range w.headers {
			if string(m.Headers[j].Key) != string(h.Key) || !gokit.SameBytes(m.Headers[j].Value, h.Value) {
				return fmt.Errorf("record %d: headers %s, want h1=\"v1\" h2=\"\"", i, gokit.HeadersString(headers(m.Headers)))
			}
		}
	}
	return nil
}

// codecs maps the scenario's codec names (gokit.Codecs) to sarama's.
var codecs = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

// produceCodec: 100 records compressed with codec to compat-codec-<codec>-sarama-<RID>.
func produceCodec(ctx context.Context, e gokit.Env, codec string) error {
	c, ok := codecs[codec]
	if !ok {
		return fmt.Errorf("unknown codec %q", codec)
	}
	topic := e.CodecTopic(codec, e.Client)
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	p, err := newSyncProducer(e, func(cfg *sarama.Config) { cfg.Producer.Compression = c })
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, gokit.CodecRecords)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.ByteEncoder(gokit.CodecRecordKey(i)), Value: sarama.ByteEncoder(gokit.CodecRecordValue(codec, i))}
		for _, h := range gokit.CodecRecordHeaders(i) {
			msgs[i].Headers = append(msgs[i].Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
	}
	if err := sendAll(p, msgs); err != nil {
		return err
	}
	got, err := consumeN(ctx, e, topic, 0, gokit.CodecRecords, nil, nil)
	if err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	return checkCodecRecords(codec, got)
}

// consumeCodec: read what writer produced in produce-codec-<codec>.
func consumeCodec(ctx context.Context, e gokit.Env, codec, writer string) error {
	got, err := consumeN(ctx, e, e.CodecTopic(codec, writer), 0, gokit.CodecRecords, nil, nil)
	if err != nil {
		return err
	}
	return checkCodecRecords(codec, got)
}

// listOffsetsByTime: three records one second apart, then offsets by special and real times.
func listOffsetsByTime(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("list-offsets-by-time")
	// The records are years old: no retention, or a retention pass would delete them.
	forever := "-1"
	if err := withAdmin(e, func(adm sarama.ClusterAdmin) error {
		return createTopic(ctx, adm, topic, 1, map[string]*string{"retention.ms": &forever})
	}); err != nil {
		return err
	}
	p, err := newSyncProducer(e, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := int64(0); i < 3; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("t%d", i)), Timestamp: time.UnixMilli(1700000000000 + 1000*i)})
	}
	if err := sendAll(p, msgs); err != nil {
		return err
	}
	client, err := sarama.NewClient([]string{e.Bootstrap}, newConfig())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	for _, c := range []struct {
		what string
		time int64
		want int64
	}{
		{"earliest", sarama.OffsetOldest, 0},
		{"latest", sarama.OffsetNewest, 3},
		{"time 1700000000500", 1700000000500, 1},
		{"time 1700000002000", 1700000002000, 2},
		{"time 1700000003000", 1700000003000, -1},
	} {
		got, err := client.GetOffset(topic, 0, c.time)
		if err != nil {
			return fmt.Errorf("%s offset: %w", c.what, err)
		}
		if got != c.want {
			return fmt.Errorf("%s offset is %d, want %d", c.what, got, c.want)
		}
	}
	return nil
}

// idempotentProducer: 1,000 keyed records to 3 partitions with idempotence on (sarama's
// default is off), read back exactly once each, in order per partition.
func idempotentProducer(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("idempotent-producer")
	if err := createTopicWithAdmin(ctx, e, topic, 3); err != nil {
		return err
	}
	p, err := newSyncProducer(e, func(cfg *sarama.Config) {
		// What sarama requires of an idempotent producer; retries stay at its default (3).
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.MaxOpenRequests = 1
	})
	if err != nil {
		return err
	}
	defer p.Close()
	const n = 1000
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(strconv.Itoa(i))}
	}
	if err := sendAll(p, msgs); err != nil {
		return err
	}
	acked := map[int32]int{}
	for _, m := range msgs {
		acked[m.Partition]++
	}
	seen := make(map[int]bool, n)
	for part := int32(0); part < 3; part++ {
		got, err := consumeN(ctx, e, topic, part, acked[part], nil, nil)
		if err != nil {
			return err
		}
		last := -1
		for _, m := range got {
			v, err := strconv.Atoi(string(m.Value))
			if err != nil || v < 0 || v >= n {
				return fmt.Errorf("unexpected record value %q at %d/%d", m.Value, m.Partition, m.Offset)
			}
			if seen[v] {
				return fmt.Errorf("record %d read twice", v)
			}
			seen[v] = true
			if v < last {
				return fmt.Errorf("partition %d: record %d after record %d", part, v, last)
			}
			last = v
			if ack := msgs[v]; ack.Partition != m.Partition || ack.Offset != m.Offset {
				return fmt.Errorf("record %d acknowledged at %d/%d but read at %d/%d", v, ack.Partition, ack.Offset, m.Partition, m.Offset)
			}
		}
	}
	if len(seen) != n {
		return fmt.Errorf("read %d distinct records, want %d", len(seen), n)
	}
	return nil
}

// transactions: commit ten records, abort ten more; read_committed sees the ten,
// read_uncommitted all twenty, neither a control record.
//
// A plain record appended after the aborted transaction marks the end: a consumer that
// reaches it has been offered everything before it, so no wait for "nothing more" is needed.
func transactions(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("transactions")
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	txnID := e.ID("txn")
	cfg := newConfig()
	// What sarama requires of a transactional producer (and of a SyncProducer).
	cfg.Producer.Transaction.ID = txnID
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	client, err := sarama.NewClient([]string{e.Bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	// sarama looks for the transaction coordinator for as long as the broker says it is not
	// available, sleeping between attempts, and takes no context: wait for it apart, and
	// when the budget (less a reserve for the explanation) ends, close its client, which
	// ends its attempts, and give up on it.
	type ready struct {
		p   sarama.SyncProducer
		err error
	}
	readyCh := make(chan ready, 1)
	go func() {
		p, err := sarama.NewSyncProducerFromClient(client)
		readyCh <- ready{p, err}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, gokit.BudgetLeft(ctx)-3*time.Second)
	defer cancel()
	var txn sarama.SyncProducer
	select {
	case r := <-readyCh:
		if r.err != nil {
			return fmt.Errorf("transactional producer: %w", r.err)
		}
		txn = r.p
	case <-waitCtx.Done():
		client.Close()
		return fmt.Errorf("transactional producer not ready within the budget; %s", coordinatorAnswer(e, txnID))
	}
	defer txn.Close()
	for _, outcome := range []struct {
		prefix string
		end    func() error
	}{{"committed", txn.CommitTxn}, {"aborted", txn.AbortTxn}} {
		if err := txn.BeginTxn(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		msgs := make([]*sarama.ProducerMessage, 10)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("%s %d", outcome.prefix, i))}
		}
		if err := sendAll(txn, msgs); err != nil {
			return fmt.Errorf("transactional produce: %w", err)
		}
		if err := outcome.end(); err != nil {
			return fmt.Errorf("end transaction (%s): %w", outcome.prefix, err)
		}
	}
	plain, err := newSyncProducer(e, nil)
	if err != nil {
		return err
	}
	defer plain.Close()
	if err := sendAll(plain, []*sarama.ProducerMessage{{Topic: topic, Partition: 0, Value: sarama.StringEncoder("end")}}); err != nil {
		return fmt.Errorf("end marker: %w", err)
	}
	isEnd := func(m *sarama.ConsumerMessage) bool { return string(m.Value) == "end" }
	for _, c := range []struct {
		level sarama.IsolationLevel
		name  string
		want  []string
	}{
		{sarama.ReadCommitted, "read_committed", gokit.Numbered("committed", 10)},
		{sarama.ReadUncommitted, "read_uncommitted", append(gokit.Numbered("committed", 10), gokit.Numbered("aborted", 10)...)},
	} {
		got, err := consumeN(ctx, e, topic, 0, -1, isEnd, func(cfg *sarama.Config) { cfg.Consumer.IsolationLevel = c.level })
		if err != nil {
			return fmt.Errorf("%s consumer: %w", c.name, err)
		}
		got = got[:len(got)-1] // the end marker
		if len(got) != len(c.want) {
			return fmt.Errorf("%s consumer read %d records before the end marker, want %d: %s", c.name, len(got), len(c.want), values(got))
		}
		for i, m := range got {
			if string(m.Value) != c.want[i] {
				return fmt.Errorf("%s consumer: record %d is %q, want %q", c.name, i, m.Value, c.want[i])
			}
		}
	}
	return nil
}

// coordinatorAnswer asks the broker once for the transaction coordinator of txnID and
// describes its answer, to explain a producer that never became ready.
func coordinatorAnswer(e gokit.Env, txnID string) string {
	b := sarama.NewBroker(e.Bootstrap)
	if err := b.Open(newConfig()); err != nil {
		return fmt.Sprintf("cannot connect to ask for the coordinator: %v", err)
	}
	defer b.Close()
	resp, err := b.FindCoordinator(&sarama.FindCoordinatorRequest{Version: 2, CoordinatorKey: txnID, CoordinatorType: sarama.CoordinatorTransaction})
	if err != nil {
		return fmt.Sprintf("FindCoordinator for %s failed: %v", txnID, err)
	}
	return fmt.Sprintf("FindCoordinator(transaction %s) answers %v", txnID, resp.Err)
}

// values renders message values for a failure message.
func values(msgs []*sarama.ConsumerMessage) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = fmt.Sprintf("%d:%q", m.Offset, m.Value)
	}
	return fmt.Sprint(out)
}

// deleteRecords: DeleteRecords before offset 5 moves the start offset to 5.
func deleteRecords(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("delete-records")
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	if err := produceNumbered(e, topic, 10); err != nil {
		return err
	}
	if err := withAdmin(e, func(adm sarama.ClusterAdmin) error {
		return adm.DeleteRecords(topic, map[int32]int64{0: 5})
	}); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	client, err := sarama.NewClient([]string{e.Bootstrap}, newConfig())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	if o, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || o != 5 {
		return fmt.Errorf("earliest offset after deleting: %d (err %v), want 5", o, err)
	}
	got, err := consumeN(ctx, e, topic, 0, 5, nil, nil)
	if err != nil {
		return err
	}
	for i, m := range got {
		if m.Offset != int64(5+i) || string(m.Value) != strconv.Itoa(5+i) {
			return fmt.Errorf("record %d is offset %d value %q, want offset %d", i, m.Offset, m.Value, 5+i)
		}
	}
	return nil
}
