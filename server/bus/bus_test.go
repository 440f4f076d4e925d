package bus_test

import (
	"testing"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/bus/bustest"
)

func TestLocal(t *testing.T) {
	bustest.Run(t, func(t *testing.T) (bus.Bus, bus.Bus) {
		b := bus.NewLocal()
		t.Cleanup(func() { b.Close() })
		return b, b
	})
}

// TestFanoutFirstLast: a bus between processes learns when this node
// starts and stops watching a conversation, once each however many
// subscribers come and go.
func TestFanoutFirstLast(t *testing.T) {
	var log []string
	f := bus.NewFanout(func(c string) { log = append(log, "+"+c) }, func(c string) { log = append(log, "-"+c) })
	x := f.Subscribe("c1", func(bus.Event) {})
	y := f.Subscribe("c1", func(bus.Event) {})
	z := f.Subscribe("c2", func(bus.Event) {})
	if f.Watched() != 2 {
		t.Fatalf("Watched = %d", f.Watched())
	}
	x()
	x()
	y()
	z()
	if got := len(log); got != 4 || log[0] != "+c1" || log[1] != "+c2" || log[2] != "-c1" || log[3] != "-c2" {
		t.Fatalf("first/last calls = %v", log)
	}
}
