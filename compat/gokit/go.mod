module odradek/compat/gokit

go 1.26.8
