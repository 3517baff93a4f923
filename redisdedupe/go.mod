module github.com/go-bizcircle/bizcircle/redisdedupe

go 1.26.0

require (
	github.com/go-bizcircle/bizcircle v0.1.0
	github.com/redis/go-redis/v9 v9.5.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/wechatpay-apiv3/wechatpay-go v0.2.21 // indirect
	golang.org/x/time v0.16.0 // indirect
)
