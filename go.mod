module github.com/go-bizcircle/bizcircle

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/wechatpay-apiv3/wechatpay-go v0.2.21
	golang.org/x/time v0.16.0
)
