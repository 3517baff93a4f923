package redisdedupe

import "github.com/redis/go-redis/v9"

// A key holds either a holder's token (in flight, expiring with the lease)
// or donePrefix followed by the token of the delivery that completed it
// (expiring with the TTL). Tokens are base32 text in upper case, so none
// starts with donePrefix.
const donePrefix = "done:"

// Every script takes the key as KEYS[1] and the caller's token as ARGV[1],
// and acts only if the key still holds that token: a holder whose lease
// lapsed and was claimed by another delivery never touches that claim.

// completeScript sets the key to ARGV[2] (donePrefix + token) for ARGV[3]
// milliseconds if it holds the token, or if it is empty (the lease lapsed and
// nobody claimed the key: the event has still been processed). It returns 1
// if the key is now marked with the caller's token, also when a retried call
// finds its own mark.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[2] then
	return 1
end
if v == ARGV[1] or not v then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0
`)

// releaseScript deletes the key if it holds the token; it returns 1 if it did.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// renewScript extends the lease to ARGV[2] milliseconds if the key holds the
// token, or takes the key back if it is empty (it lapsed, or the server lost
// it, and nobody else claimed it). It returns 1 if the caller holds the key.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not v then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return 1
end
return 0
`)

// claimScript is SET key token NX GET PX lease for servers older than
// Redis 7.0, which refuse NX with GET: it sets the key to ARGV[1] for ARGV[2]
// milliseconds if it is empty and returns the previous value (nil if none).
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)
