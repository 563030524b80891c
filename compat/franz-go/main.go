// Command driver runs the compatibility scenarios of compat/SCENARIOS.md with franz-go
// (kgo for producing and consuming, kadm for administration) against one broker.
//
//	./driver --bootstrap 127.0.0.1:PORT --run-id RID --scenarios s1,s2,...
//
// The command line, the JSON result lines, the 60 s budget of each scenario and the
// consumer-group scenario's checks are compat/gokit's; this folder holds the franz-go calls.
package main

import "odradek/compat/gokit"

func main() {
	gokit.Main("franz-go", gokit.Scenarios{
		Plain: map[string]gokit.Scenario{
			"metadata":             metadata,
			"topics-admin":         topicsAdmin,
			"produce-consume":      produceConsume,
			"list-offsets-by-time": listOffsetsByTime,
			"consumer-group":       consumerGroup,
			"resume-committed":     resumeCommitted,
			"idempotent-producer":  idempotentProducer,
			"transactions":         transactions,
			"delete-records":       deleteRecords,
		},
		ProduceCodec: produceCodec,
		ConsumeCodec: consumeCodec,
	})
}
