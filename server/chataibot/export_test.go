package chataibot

import "time"

// SetStartWait shortens how long a's callbacks wait for their route, for
// tests of what happens once the wait is over.
func SetStartWait(a *Adapter, d time.Duration) { a.startWait = d }
