package events_test

import (
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

func BenchmarkDecode(b *testing.B) {
	e, err := events.New("Ht4W6ZWr0cwBSGn3VJxIpB", "cloud/vm", events.Client("c1234"), time.Now(), &events.ClientInfoReported{
		Attributes: events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: 1234}, Changed: []string{"data_qnt"}})
	if err != nil {
		b.Fatal(err)
	}
	wire, _ := events.Encode(e)
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := events.Decode(wire, 7); err != nil {
			b.Fatal(err)
		}
	}
}
