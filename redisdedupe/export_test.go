package redisdedupe

// ForceLegacyClaim makes d claim keys with the script that servers older
// than Redis 7.0 need, as it does once such a server refuses SET NX GET.
func ForceLegacyClaim(d *Deduper) { d.legacy.Store(true) }
