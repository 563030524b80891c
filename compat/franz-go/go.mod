module odradek/compat/franz-go

go 1.26.8

// compat/gokit is the Go drivers' shared kit, built from its folder (nothing to download).
require odradek/compat/gokit v0.0.0

replace odradek/compat/gokit => ../gokit

require (
	github.com/twmb/franz-go v1.22.3
	github.com/twmb/franz-go/pkg/kadm v1.19.0
	github.com/twmb/franz-go/pkg/kmsg v1.15.1
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
)
