// Package bizcircle receives WeChat Pay 智慧商圈 (smart business circle)
// notifications: it verifies and decrypts them, runs typed callbacks for
// payments, refunds and authorizations exactly once across WeChat's retries
// and concurrent duplicates, and answers in WeChat Pay's format.
package bizcircle
