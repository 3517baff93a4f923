package bizcircletest

import (
	"time"

	"github.com/go-bizcircle/bizcircle"
)

var shanghai = time.FixedZone("CST", 8*3600)

// SamplePayment returns a realistic payment with a fresh transaction ID.
func SamplePayment() bizcircle.PaymentEvent {
	return bizcircle.PaymentEvent{
		MchID:         "1230000109",
		MerchantName:  "腾讯广场",
		ShopName:      "微信支付",
		ShopNumber:    "123456",
		AppID:         "wxd678efh567hg6787",
		OpenID:        "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
		TimeEnd:       time.Now().In(shanghai).Truncate(time.Second),
		Amount:        200,
		TransactionID: "42000" + randomDigits(23),
	}
}

// SampleRefund returns a realistic full refund of payment, with a fresh
// refund ID.
func SampleRefund(payment bizcircle.PaymentEvent) bizcircle.RefundEvent {
	return bizcircle.RefundEvent{
		MchID:         payment.MchID,
		MerchantName:  payment.MerchantName,
		ShopName:      payment.ShopName,
		ShopNumber:    payment.ShopNumber,
		AppID:         payment.AppID,
		OpenID:        payment.OpenID,
		RefundTime:    time.Now().In(shanghai).Truncate(time.Second),
		PayAmount:     payment.Amount,
		RefundAmount:  payment.Amount,
		TransactionID: payment.TransactionID,
		RefundID:      "50300" + randomDigits(24),
	}
}

// SampleAuthorization returns a realistic authorization result.
func SampleAuthorization() bizcircle.AuthorizationEvent {
	return bizcircle.AuthorizationEvent{
		OpenID:   "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
		Code:     "EXAMPLE" + randomDigits(9),
		MchID:    "1230000109",
		AuthType: bizcircle.AuthRegisteredAndAuthorized,
	}
}
