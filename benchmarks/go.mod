module github.com/go-bizcircle/bizcircle/benchmarks

go 1.26.0

require (
	github.com/go-bizcircle/bizcircle v0.1.0
	github.com/go-pay/gopay v1.5.109
	github.com/wechatpay-apiv3/wechatpay-go v0.2.21
)

require (
	github.com/go-pay/crypto v0.0.1 // indirect
	github.com/go-pay/errgroup v0.0.3 // indirect
	github.com/go-pay/smap v0.0.2 // indirect
	github.com/go-pay/util v0.0.4 // indirect
	github.com/go-pay/xlog v0.0.3 // indirect
	github.com/go-pay/xtime v0.0.2 // indirect
	golang.org/x/time v0.16.0 // indirect
)
