package bizcircle

import (
	"context"
	"errors"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// MultiVerifier returns a verifier that accepts a signature any of vs
// accepts, trying them in order: several merchants behind one URL, each with
// its own WeChat Pay public key or platform certificates. A verifier that
// does not know the serial refuses it before any RSA work, so a notification
// costs one RSA verification whichever merchant sent it. Pair it with
// [WithAPIv3Keys] for the merchants' APIv3 keys. GetSerial returns the first
// verifier's. It panics if vs is empty or holds a nil verifier.
func MultiVerifier(vs ...auth.Verifier) auth.Verifier {
	if len(vs) == 0 {
		panic("bizcircle: MultiVerifier of no verifiers")
	}
	for _, v := range vs {
		if v == nil || isNilPointer(v) {
			panic("bizcircle: MultiVerifier: nil verifier")
		}
	}
	return multiVerifier(append([]auth.Verifier(nil), vs...))
}

type multiVerifier []auth.Verifier

func (m multiVerifier) Verify(ctx context.Context, serial, message, signature string) error {
	var errs []error
	for _, v := range m {
		err := v.Verify(ctx, serial, message, signature)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (m multiVerifier) GetSerial(ctx context.Context) (string, error) { return m[0].GetSerial(ctx) }
