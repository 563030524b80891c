module odradek/compat/kafka-go

go 1.26.8

// compat/gokit is the Go drivers' shared kit, built from its folder (nothing to download).
require odradek/compat/gokit v0.0.0

replace odradek/compat/gokit => ../gokit

require github.com/segmentio/kafka-go v0.4.51

require (
	github.com/klauspost/compress v1.15.9 // indirect
	github.com/pierrec/lz4/v4 v4.1.15 // indirect
)
