// Command rawbytes uses the raw-bytes entry point, for code that is not an
// net/http handler: a serverless function, fasthttp or Hertz, a gRPC hop
// behind a gateway. Its handler takes a map of headers and the body bytes;
// bizcircle.Decoder verifies and decrypts, bizcircle.Dispatcher runs the
// callback once, and StatusCode and AnswerBody give the answer.
//
// As a stand-in for such a platform, main reads one invocation as JSON on
// stdin, {"headers":{…},"body":"…"}, and writes the answer as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// maxBody bounds the body this code accepts; with the raw-bytes entry point
// bounding the read is the caller's job (the middleware does it itself).
const maxBody = 64 << 10

// A receiver answers notifications given as headers and bytes.
type receiver struct {
	decoder    *bizcircle.Decoder
	dispatcher *bizcircle.Dispatcher
}

func newReceiver(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (*receiver, error) {
	dec, err := bizcircle.NewDecoder(apiV3Key, verifier, opts...)
	if err != nil {
		return nil, err
	}
	return &receiver{decoder: dec, dispatcher: bizcircle.NewDispatcher(cb, opts...)}, nil
}

// handle is the non-net/http signature: header names in any case (gateways
// often lower-case them), the raw body, and the status and body to answer.
func (r *receiver) handle(ctx context.Context, headers map[string]string, body []byte) (status int, answer []byte) {
	if len(body) > maxBody {
		return http.StatusRequestEntityTooLarge, []byte(`{"code":"FAIL","message":"body too large"}`)
	}
	h := make(http.Header, len(headers))
	for name, value := range headers {
		h.Set(name, value) // canonicalizes the name
	}
	n, err := r.decoder.Decode(ctx, h, body)
	if err == nil {
		_, err = r.dispatcher.Dispatch(bizcircle.NewContext(ctx, n), n)
	}
	return bizcircle.StatusCode(err), bizcircle.AnswerBody(err)
}

// invocation and reply are main's stand-in for a platform's event format.
type invocation struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type reply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func main() {
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	r, err := newReceiver(apiV3Key, verifier, devkeys.Callbacks())
	if err != nil {
		log.Fatal(err)
	}
	var in invocation
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		log.Fatal(err)
	}
	status, body := r.handle(context.Background(), in.Headers, []byte(in.Body))
	if err := json.NewEncoder(os.Stdout).Encode(reply{status, body}); err != nil {
		log.Fatal(err)
	}
}
